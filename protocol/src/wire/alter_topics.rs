//! CreatePartitions (key 22) and AlterTopicConfig (key 23): changing a
//! topic that exists.

use serde::{Deserialize, Serialize};

use super::create_topics::TopicResult;
use super::topic_config::TopicConfig;

/// Raises topics' partition counts. The new partitions start empty; the
/// existing ones are untouched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePartitionsRequest {
    /// The topics and their new counts.
    pub topics: Vec<PartitionCount>,
    /// Only check that each change could be made; change nothing.
    pub validate_only: bool,
}

/// A topic and the partition count it should have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionCount {
    /// Topic name.
    pub name: String,
    /// The new count, above the current one.
    pub count: u32,
}

/// One result per requested topic, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePartitionsResponse {
    /// Results.
    pub results: Vec<TopicResult>,
}

/// A setting of [`TopicConfig`], by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConfigField {
    /// `segment_bytes`.
    SegmentBytes,
    /// `segment_ms`.
    SegmentMs,
    /// `retention_ms`.
    RetentionMs,
    /// `retention_bytes`.
    RetentionBytes,
    /// `flush`.
    Flush,
    /// `compression`.
    Compression,
}

/// Changes topics' settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterTopicConfigRequest {
    /// The changes, each of one topic.
    pub topics: Vec<TopicConfigChange>,
    /// Only check that each change could be made; change nothing.
    pub validate_only: bool,
}

/// The change of one topic's settings: the fields `set` gives replace the
/// topic's (fields it leaves `None` stay as they are), then the fields
/// `reset` names go back to the broker's defaults. A field both set and
/// reset is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfigChange {
    /// Topic name.
    pub name: String,
    /// New values.
    #[serde(with = "super::topic_config::without_max_message_bytes")]
    pub set: TopicConfig,
    /// Settings that return to the broker's defaults.
    pub reset: Vec<ConfigField>,
}

/// One result per requested topic, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterTopicConfigResponse {
    /// Results.
    pub results: Vec<TopicResult>,
}

impl TopicConfigChange {
    /// `current` with this change applied, or why it cannot be.
    pub fn apply(&self, current: &TopicConfig) -> Result<TopicConfig, String> {
        let mut c = current.clone();
        let s = &self.set;
        let mut set = Vec::new();
        macro_rules! take {
            ($field:ident, $name:expr) => {
                if s.$field.is_some() {
                    c.$field = s.$field.clone();
                    set.push($name);
                }
            };
        }
        take!(segment_bytes, ConfigField::SegmentBytes);
        take!(segment_ms, ConfigField::SegmentMs);
        take!(retention_ms, ConfigField::RetentionMs);
        take!(retention_bytes, ConfigField::RetentionBytes);
        take!(flush, ConfigField::Flush);
        take!(compression, ConfigField::Compression);
        for f in &self.reset {
            if set.contains(f) {
                return Err(format!("{f:?} is both set and reset"));
            }
            match f {
                ConfigField::SegmentBytes => c.segment_bytes = None,
                ConfigField::SegmentMs => c.segment_ms = None,
                ConfigField::RetentionMs => c.retention_ms = None,
                ConfigField::RetentionBytes => c.retention_bytes = None,
                ConfigField::Flush => c.flush = None,
                ConfigField::Compression => c.compression = None,
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ErrorCode;
    use crate::wire::testutil::check_all;
    use crate::wire::topic_config::{FlushMode, TopicCompression};

    #[test]
    fn requests_round_trip_and_reject_truncation() {
        check_all(&[
            CreatePartitionsRequest {
                topics: vec![],
                validate_only: false,
            },
            CreatePartitionsRequest {
                topics: vec![
                    PartitionCount {
                        name: "orders".into(),
                        count: 12,
                    },
                    PartitionCount {
                        name: "x".repeat(300),
                        count: u32::MAX,
                    },
                ],
                validate_only: true,
            },
        ]);
        check_all(&[
            AlterTopicConfigRequest {
                topics: vec![],
                validate_only: true,
            },
            AlterTopicConfigRequest {
                topics: vec![TopicConfigChange {
                    name: "orders".into(),
                    set: TopicConfig {
                        retention_ms: Some(60_000),
                        flush: Some(FlushMode::IntervalMs(5)),
                        compression: Some(TopicCompression::Zstd),
                        ..TopicConfig::default()
                    },
                    reset: vec![ConfigField::RetentionBytes, ConfigField::SegmentMs],
                }],
                validate_only: false,
            },
        ]);
    }

    #[test]
    fn responses_round_trip_and_reject_truncation() {
        let results = vec![TopicResult {
            name: "orders".into(),
            error_code: ErrorCode::InvalidPartitions,
            message: Some("no".into()),
        }];
        check_all(&[CreatePartitionsResponse {
            results: results.clone(),
        }]);
        check_all(&[AlterTopicConfigResponse { results }]);
    }

    /// `01 01 61 03 00`: one topic `a` raised to 3 partitions, not only
    /// validated.
    #[test]
    fn layout_is_as_documented() {
        let r = CreatePartitionsRequest {
            topics: vec![PartitionCount {
                name: "a".into(),
                count: 3,
            }],
            validate_only: false,
        };
        assert_eq!(
            crate::wire::testutil::encode(&r),
            [0x01, 0x01, b'a', 0x03, 0x00]
        );
    }

    #[test]
    fn a_change_sets_then_resets() {
        let current = TopicConfig {
            retention_ms: Some(1),
            retention_bytes: Some(2),
            segment_bytes: Some(3),
            ..TopicConfig::default()
        };
        let change = TopicConfigChange {
            name: "t".into(),
            set: TopicConfig {
                retention_ms: Some(10),
                ..TopicConfig::default()
            },
            reset: vec![ConfigField::RetentionBytes],
        };
        assert_eq!(
            change.apply(&current).unwrap(),
            TopicConfig {
                retention_ms: Some(10),
                segment_bytes: Some(3),
                ..TopicConfig::default()
            }
        );
        let both = TopicConfigChange {
            reset: vec![ConfigField::RetentionMs],
            ..change
        };
        assert!(both.apply(&current).is_err());
    }
}
