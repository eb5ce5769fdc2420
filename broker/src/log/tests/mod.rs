//! Tests of [`super::PartitionLog`] as a whole: append and read, recovery
//! after crashes and corruption, retention, injected faults.

mod append_read;
mod concurrency;
mod crash_image;
mod faults;
mod hostile_headers;
mod model;
mod producers;
mod recovery;
mod replica;
mod resources;
mod retention;
mod seam;
mod util;
