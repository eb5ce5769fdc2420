//! Frames queued for one connection, written together.
//!
//! Each partition group's Raft core calls its peers on its own (a
//! heartbeat per group and follower every tick, an answer per call), so a
//! node hosting many partitions queues many small frames for the same
//! socket at once. A connection's writer takes every frame already queued
//! (up to [`MAX_FRAMES`]) and writes the small ones as one buffer: one
//! `send` instead of one per frame. Frames stay in queue order; a large
//! frame (over [`COPY_AT_MOST`]) is written from its own buffer, not
//! copied.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Most frames taken from the queue for one write.
pub(super) const MAX_FRAMES: usize = 256;
/// Frames up to this size are copied into the shared buffer; larger ones
/// are written on their own.
pub(super) const COPY_AT_MOST: usize = 16 << 10;

/// Takes `first` and every frame already waiting in `rx` (at most
/// [`MAX_FRAMES`] in all), in order.
pub(super) fn drain<T>(first: T, rx: &mut mpsc::UnboundedReceiver<T>) -> Vec<T> {
    let mut frames = vec![first];
    while frames.len() < MAX_FRAMES {
        match rx.try_recv() {
            Ok(f) => frames.push(f),
            Err(_) => break,
        }
    }
    frames
}

/// Groups byte frames into the buffers to write, in order: runs of small
/// frames joined into one buffer, each large frame on its own.
pub(super) fn join(frames: impl IntoIterator<Item = Bytes>) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut run = BytesMut::new();
    let mut run_frames = 0usize;
    let mut single: Option<Bytes> = None;
    for frame in frames {
        if frame.len() > COPY_AT_MOST {
            flush(&mut out, &mut run, &mut run_frames, &mut single);
            out.push(frame);
            continue;
        }
        match run_frames {
            0 => single = Some(frame),
            1 => {
                if let Some(s) = single.take() {
                    run.extend_from_slice(&s);
                }
                run.extend_from_slice(&frame);
            }
            _ => run.extend_from_slice(&frame),
        }
        run_frames += 1;
    }
    flush(&mut out, &mut run, &mut run_frames, &mut single);
    out
}

/// Writes `frames` in order, small ones joined ([`join`]).
pub(super) async fn write_all<W: AsyncWrite + Unpin>(
    w: &mut W,
    frames: Vec<Bytes>,
) -> std::io::Result<()> {
    if frames.is_empty() {
        return Ok(());
    }
    for buf in join(frames) {
        w.write_all(&buf).await?;
    }
    Ok(())
}

/// Ends the current run: a lone frame as it is (no copy), several as the
/// joined buffer.
fn flush(out: &mut Vec<Bytes>, run: &mut BytesMut, n: &mut usize, single: &mut Option<Bytes>) {
    if let Some(s) = single.take() {
        out.push(s);
    } else if *n > 0 {
        out.push(run.split().freeze());
    }
    *n = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(byte: u8, len: usize) -> Bytes {
        Bytes::from(vec![byte; len])
    }

    #[test]
    fn small_frames_are_joined_in_order_and_large_ones_kept_apart() {
        let big = COPY_AT_MOST + 1;
        let frames = vec![
            frame(1, 3),
            frame(2, 4),
            frame(3, big),
            frame(4, 5),
            frame(5, big),
            frame(6, 1),
            frame(7, 2),
        ];
        let all: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
        let out = join(frames);
        let lens: Vec<usize> = out.iter().map(Bytes::len).collect();
        assert_eq!(lens, vec![7, big, 5, big, 3]);
        let joined: Vec<u8> = out.iter().flat_map(|f| f.to_vec()).collect();
        assert_eq!(joined, all, "same bytes, same order");
    }

    #[test]
    fn a_lone_frame_is_passed_through_without_a_copy() {
        let f = frame(9, 10);
        let ptr = f.as_ptr();
        let out = join(vec![f]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ptr(), ptr);
        assert!(join(Vec::new()).is_empty());
    }

    #[tokio::test]
    async fn drain_takes_what_is_queued_up_to_the_cap() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..MAX_FRAMES + 10 {
            tx.send(i).unwrap();
        }
        let first = rx.recv().await.unwrap();
        let got = drain(first, &mut rx);
        assert_eq!(got, (0..MAX_FRAMES).collect::<Vec<_>>());
        let next = rx.recv().await.unwrap();
        assert_eq!(drain(next, &mut rx).len(), 10);
    }
}
