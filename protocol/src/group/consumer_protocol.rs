//! Kafka's ConsumerProtocol: the `Subscription` a member sends as its
//! JoinGroup protocol metadata and the `Assignment` the leader sends for it
//! in SyncGroup, byte for byte as Kafka's `ConsumerProtocolSubscription`
//! (versions 0–3) and `ConsumerProtocolAssignment` (versions 0–3) define
//! them, so native and Kafka clients can be members of one group.
//!
//! Both start with a big-endian `int16` version. Decoding accepts any
//! version ≥ 0: a newer version is read as the newest one known here (3)
//! and the bytes after its fields are ignored, as Kafka's own
//! `ConsumerProtocol` does; the decoded value then says version 3. Every
//! count is checked against the bytes left before anything is allocated
//! for it. Byte layout: `docs/protocol.md`, "ConsumerProtocol".

/// The newest Subscription / Assignment version this codec writes.
pub const MAX_VERSION: i16 = 3;

/// The group `protocol_type` of consumer groups.
pub const PROTOCOL_TYPE: &str = "consumer";

/// Why ConsumerProtocol bytes could not be decoded, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsumerProtocolError {
    /// Fewer bytes than a field needs.
    #[error("consumer protocol bytes truncated: need {need} bytes at byte {position}, have {have}")]
    Truncated {
        /// Byte position where the field starts.
        position: usize,
        /// Bytes the field needs.
        need: usize,
        /// Bytes available from `position`.
        have: usize,
    },
    /// The version is negative.
    #[error("unsupported consumer protocol version {0}")]
    UnsupportedVersion(i16),
    /// A length or count is negative where the field is not nullable.
    #[error("negative length {length} at byte {position} for a non-nullable field")]
    NegativeLength {
        /// Byte position of the length.
        position: usize,
        /// The length read.
        length: i32,
    },
    /// A string is not valid UTF-8.
    #[error("string at byte {0} is not valid UTF-8")]
    InvalidUtf8(usize),
}

/// One topic's partitions (Kafka's `TopicPartition` struct of the
/// ConsumerProtocol schemas).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicPartitions {
    /// Topic name.
    pub topic: String,
    /// Partition numbers.
    pub partitions: Vec<i32>,
}

/// What a member subscribes to (JoinGroup protocol metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Version written by [`Subscription::encode`] (clamped to
    /// 0..=[`MAX_VERSION`]); fields newer than it are not written.
    pub version: i16,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Assignor-specific bytes; `None` is Kafka's null.
    pub user_data: Option<Vec<u8>>,
    /// Partitions the member owns now (version ≥ 1; used by cooperative
    /// and sticky assignors).
    pub owned_partitions: Vec<TopicPartitions>,
    /// Generation of `owned_partitions` (version ≥ 2; -1 when unknown).
    pub generation_id: i32,
    /// Rack of the member (version ≥ 3).
    pub rack_id: Option<String>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            version: MAX_VERSION,
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

/// The partitions the leader gives a member (SyncGroup assignment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Version written by [`Assignment::encode`] (clamped to
    /// 0..=[`MAX_VERSION`]); all versions share one layout.
    pub version: i16,
    /// Assigned partitions.
    pub partitions: Vec<TopicPartitions>,
    /// Assignor-specific bytes; `None` is Kafka's null.
    pub user_data: Option<Vec<u8>>,
}

impl Default for Assignment {
    fn default() -> Self {
        Assignment {
            version: MAX_VERSION,
            partitions: Vec::new(),
            user_data: None,
        }
    }
}

impl Subscription {
    /// Kafka's bytes for this subscription at `version` (clamped).
    pub fn encode(&self) -> Vec<u8> {
        let version = self.version.clamp(0, MAX_VERSION);
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&version.to_be_bytes());
        put_len(&mut out, self.topics.len());
        for t in &self.topics {
            put_string(&mut out, t);
        }
        put_nullable_bytes(&mut out, self.user_data.as_deref());
        if version >= 1 {
            put_topic_partitions(&mut out, &self.owned_partitions);
        }
        if version >= 2 {
            out.extend_from_slice(&self.generation_id.to_be_bytes());
        }
        if version >= 3 {
            match &self.rack_id {
                None => out.extend_from_slice(&(-1i16).to_be_bytes()),
                Some(r) => put_string(&mut out, r),
            }
        }
        out
    }

    /// Reads a subscription of any version ≥ 0; fields a version lacks get
    /// Kafka's defaults (empty, -1, null).
    pub fn decode(buf: &[u8]) -> Result<Self, ConsumerProtocolError> {
        let mut r = Reader { buf, at: 0 };
        let version = r.version()?;
        let n = r.count(2)?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(r.string()?);
        }
        let user_data = r.nullable_bytes()?;
        let mut s = Subscription {
            version,
            topics,
            user_data,
            ..Subscription::default()
        };
        if version >= 1 {
            s.owned_partitions = r.topic_partitions()?;
        }
        if version >= 2 {
            s.generation_id = r.i32()?;
        }
        if version >= 3 {
            s.rack_id = r.nullable_string()?;
        }
        Ok(s)
    }
}

impl Assignment {
    /// Kafka's bytes for this assignment at `version` (clamped).
    pub fn encode(&self) -> Vec<u8> {
        let version = self.version.clamp(0, MAX_VERSION);
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&version.to_be_bytes());
        put_topic_partitions(&mut out, &self.partitions);
        put_nullable_bytes(&mut out, self.user_data.as_deref());
        out
    }

    /// Reads an assignment of any version ≥ 0.
    pub fn decode(buf: &[u8]) -> Result<Self, ConsumerProtocolError> {
        let mut r = Reader { buf, at: 0 };
        let version = r.version()?;
        let partitions = r.topic_partitions()?;
        let user_data = r.nullable_bytes()?;
        Ok(Assignment {
            version,
            partitions,
            user_data,
        })
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(i32::try_from(n).unwrap_or(i32::MAX)).to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    // Kafka strings are at most i16::MAX bytes; longer names are cut rather
    // than written with a wrapped length (topic names are ≤ 249 bytes).
    let b = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    out.extend_from_slice(&(b.len() as i16).to_be_bytes());
    out.extend_from_slice(b);
}

fn put_nullable_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(b) => {
            put_len(out, b.len());
            out.extend_from_slice(b);
        }
    }
}

fn put_topic_partitions(out: &mut Vec<u8>, tps: &[TopicPartitions]) {
    put_len(out, tps.len());
    for tp in tps {
        put_string(out, &tp.topic);
        put_len(out, tp.partitions.len());
        for p in &tp.partitions {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConsumerProtocolError> {
        let have = self.buf.len() - self.at;
        if n > have {
            return Err(ConsumerProtocolError::Truncated {
                position: self.at,
                need: n,
                have,
            });
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn i16(&mut self) -> Result<i16, ConsumerProtocolError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, ConsumerProtocolError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn version(&mut self) -> Result<i16, ConsumerProtocolError> {
        let v = self.i16()?;
        if v < 0 {
            return Err(ConsumerProtocolError::UnsupportedVersion(v));
        }
        Ok(v.min(MAX_VERSION))
    }

    /// An array count, checked against the bytes left: each element needs
    /// at least `min_size` bytes, so a count larger than that allows is
    /// refused before any allocation.
    fn count(&mut self, min_size: usize) -> Result<usize, ConsumerProtocolError> {
        let position = self.at;
        let n = self.i32()?;
        if n < 0 {
            return Err(ConsumerProtocolError::NegativeLength {
                position,
                length: n,
            });
        }
        let n = n as usize;
        let have = self.buf.len() - self.at;
        if n.saturating_mul(min_size) > have {
            return Err(ConsumerProtocolError::Truncated {
                position: self.at,
                need: n.saturating_mul(min_size),
                have,
            });
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, ConsumerProtocolError> {
        let position = self.at;
        match self.nullable_string()? {
            Some(s) => Ok(s),
            None => Err(ConsumerProtocolError::NegativeLength {
                position,
                length: -1,
            }),
        }
    }

    fn nullable_string(&mut self) -> Result<Option<String>, ConsumerProtocolError> {
        let position = self.at;
        let n = self.i16()?;
        if n < 0 {
            if n == -1 {
                return Ok(None);
            }
            return Err(ConsumerProtocolError::NegativeLength {
                position,
                length: i32::from(n),
            });
        }
        let b = self.take(n as usize)?;
        std::str::from_utf8(b)
            .map(|s| Some(s.to_owned()))
            .map_err(|_| ConsumerProtocolError::InvalidUtf8(position + 2))
    }

    fn nullable_bytes(&mut self) -> Result<Option<Vec<u8>>, ConsumerProtocolError> {
        let position = self.at;
        let n = self.i32()?;
        if n < 0 {
            if n == -1 {
                return Ok(None);
            }
            return Err(ConsumerProtocolError::NegativeLength {
                position,
                length: n,
            });
        }
        Ok(Some(self.take(n as usize)?.to_vec()))
    }

    fn topic_partitions(&mut self) -> Result<Vec<TopicPartitions>, ConsumerProtocolError> {
        // Each entry: a string (≥ 2 bytes) and an array count (4 bytes).
        let n = self.count(6)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let topic = self.string()?;
            let m = self.count(4)?;
            let mut partitions = Vec::with_capacity(m);
            for _ in 0..m {
                partitions.push(self.i32()?);
            }
            out.push(TopicPartitions { topic, partitions });
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "consumer_protocol_tests.rs"]
mod tests;
