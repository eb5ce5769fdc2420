//! A connection to one broker: sends framed requests, reads framed
//! responses. Requests may be pipelined: [`Connection::send`] several, then
//! [`Connection::recv`] their responses, which come back in request order.

use bytes::{Buf, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_protocol::wire::alter_topics::{
    AlterTopicConfigRequest, AlterTopicConfigResponse, CreatePartitionsRequest,
    CreatePartitionsResponse,
};
use sluice_protocol::wire::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use sluice_protocol::wire::broker_status::{BrokerStatusRequest, BrokerStatusResponse};
use sluice_protocol::wire::create_topics::{CreateTopicsRequest, CreateTopicsResponse, NewTopic};
use sluice_protocol::wire::delete_records::{DeleteRecordsRequest, DeleteRecordsResponse};
use sluice_protocol::wire::delete_topics::{DeleteTopicsRequest, DeleteTopicsResponse};
use sluice_protocol::wire::fetch::{FetchPartition, FetchRequest, FetchResponse};
use sluice_protocol::wire::fetch_stream::FetchStreamResponse;
use sluice_protocol::wire::frame::{LEN_PREFIX, RESPONSE_HEADER_LEN};
use sluice_protocol::wire::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use sluice_protocol::wire::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsResponse,
};
use sluice_protocol::wire::metadata::{
    MetadataRequest, MetadataRequestV3, MetadataResponse, MetadataResponseV0, MetadataResponseV1,
};
use sluice_protocol::wire::offset_commit::{
    CommitPartition, OffsetCommitRequest, OffsetCommitResponse,
};
use sluice_protocol::wire::offset_fetch::{
    OffsetFetchRequest, OffsetFetchResponse, TopicPartitionRef,
};
use sluice_protocol::wire::partition_status::{PartitionStatusRequest, PartitionStatusResponse};
use sluice_protocol::wire::produce::{Acks, ProducePartition, ProduceRequest, ProduceResponse};
use sluice_protocol::wire::stats::{StatsRequest, StatsResponse};
use sluice_protocol::wire::{
    ApiKey, ErrorBody, ErrorCode, RequestHeader, ResponseHeader, check_frame, decode_body,
    encode_body,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs};

use crate::error::ClientError;

/// Largest response frame accepted (fetch responses carry records).
pub const MAX_RESPONSE_BYTES: u32 = 1 << 30;

/// One partition's part of a fetch response.
#[derive(Debug, Clone)]
pub struct FetchedPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// Outcome.
    pub error_code: ErrorCode,
    /// One past the last readable offset.
    pub high_watermark: u64,
    /// First offset held.
    pub log_start_offset: u64,
    /// Whole record batches (the first may start before the offset asked
    /// for), sharing the response buffer.
    pub records: Bytes,
}

/// Each partition of a fetch answer with its records: consecutive slices
/// of `tail` (no copy), whose lengths the caller checked add up.
pub(crate) fn split_records(
    partitions: Vec<sluice_protocol::wire::fetch::FetchPartitionResponse>,
    tail: &Bytes,
) -> Vec<FetchedPartition> {
    let mut at = 0usize;
    partitions
        .into_iter()
        .map(|p| {
            let len = p.records_len as usize;
            let records = tail.slice(at..at + len);
            at += len;
            FetchedPartition {
                topic: p.topic,
                partition: p.partition,
                error_code: p.error_code,
                high_watermark: p.high_watermark,
                log_start_offset: p.log_start_offset,
                records,
            }
        })
        .collect()
}

/// The error a response with a frame-level error code stands for: the
/// code, and the message of its `ErrorBody` (empty if that does not decode).
fn refusal(header: &ResponseHeader, body: &[u8]) -> ClientError {
    let message = decode_body::<ErrorBody>(body)
        .map(|b| b.message)
        .unwrap_or_default();
    ClientError::Broker {
        code: header.error_code,
        message,
    }
}

/// The sending half of a connection: encodes and writes request frames.
#[derive(Debug)]
pub struct RequestWriter {
    half: OwnedWriteHalf,
    next_id: u32,
    buf: Vec<u8>,
}

impl RequestWriter {
    /// Sends a request without waiting for its response; returns its
    /// correlation id. `tail` is raw bytes after the body (record batches).
    /// The header asks for the newest version of `api` this build speaks.
    pub async fn send<T: Serialize>(
        &mut self,
        api: ApiKey,
        body: &T,
        tail: &[u8],
    ) -> Result<u32, ClientError> {
        self.send_version(api, api.versions().1, body, tail).await
    }

    /// [`send`](Self::send) with a given body version; `body` must be that
    /// version's type.
    pub async fn send_version<T: Serialize>(
        &mut self,
        api: ApiKey,
        version: u16,
        body: &T,
        tail: &[u8],
    ) -> Result<u32, ClientError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.buf.clear();
        self.buf.resize(16, 0);
        let body_len = encode_body(body, &mut self.buf);
        let header = RequestHeader {
            api_key: api as u16,
            api_version: version,
            correlation_id: id,
            body_len: body_len as u32,
        }
        .encode(tail.len())?;
        self.buf[..16].copy_from_slice(&header);
        if tail.is_empty() {
            self.half.write_all(&self.buf).await?;
        } else {
            let mut bufs = [
                std::io::IoSlice::new(&self.buf),
                std::io::IoSlice::new(tail),
            ];
            let mut slices: &mut [std::io::IoSlice<'_>] = &mut bufs;
            while !slices.is_empty() {
                let n = self.half.write_vectored(slices).await?;
                if n == 0 {
                    return Err(ClientError::Closed);
                }
                std::io::IoSlice::advance_slices(&mut slices, n);
            }
        }
        Ok(id)
    }

    /// Writes raw bytes (for tests of hostile input).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        Ok(self.half.write_all(bytes).await?)
    }
}

/// What a server that answers in HTTP is told.
const HTTP_ANSWER: &str = "the server answered in HTTP, not in Sluice's native protocol: \
     is this a broker's metrics port? Give its native listener (`listen`, 127.0.0.1:9292 by default)";

/// The receiving half of a connection: reads and splits response frames.
#[derive(Debug)]
pub struct ResponseReader {
    half: OwnedReadHalf,
    buf: BytesMut,
    /// Whether a response frame has arrived on this connection yet.
    answered: bool,
}

impl ResponseReader {
    /// Reads the next response frame: its header, body and tail. The tail
    /// shares the frame's buffer (no copy).
    pub async fn recv_raw(&mut self) -> Result<(ResponseHeader, Bytes, Bytes), ClientError> {
        let total = loop {
            let checked = match check_frame(&self.buf, MAX_RESPONSE_BYTES, RESPONSE_HEADER_LEN) {
                Ok(checked) => checked,
                // "HTTP" read as a length is over the maximum: a client
                // pointed at a broker's metrics port.
                Err(_) if self.buf.starts_with(b"HTTP/") => {
                    return Err(ClientError::NotNative(HTTP_ANSWER));
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(total) = checked {
                break total;
            }
            if self.buf.len() >= LEN_PREFIX {
                let want = LEN_PREFIX + (&self.buf[..4]).get_u32() as usize;
                self.buf.reserve(want.saturating_sub(self.buf.len()));
            } else {
                self.buf.reserve(64 * 1024);
            }
            if self.half.read_buf(&mut self.buf).await? == 0 {
                return Err(if self.answered || !self.buf.is_empty() {
                    ClientError::Closed
                } else {
                    ClientError::ClosedUnanswered
                });
            }
        };
        self.answered = true;
        let frame = self.buf.split_to(total).freeze();
        let (header, tail_len) = ResponseHeader::decode(&frame)?;
        let body_start = LEN_PREFIX + RESPONSE_HEADER_LEN;
        let body_end = body_start + header.body_len as usize;
        let body = frame.slice(body_start..body_end);
        let tail = frame.slice(body_end..body_end + tail_len);
        Ok((header, body, tail))
    }

    /// Reads the next response and decodes its body as `T`; a frame-level
    /// error becomes [`ClientError::Broker`].
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<(u32, T, Bytes), ClientError> {
        let (header, body, tail) = self.recv_raw().await?;
        if header.error_code != ErrorCode::None {
            return Err(refusal(&header, &body));
        }
        Ok((header.correlation_id, decode_body(&body)?, tail))
    }
}

/// A connection to a broker.
#[derive(Debug)]
pub struct Connection {
    pub(crate) writer: RequestWriter,
    pub(crate) reader: ResponseReader,
    pub(crate) in_flight: std::collections::VecDeque<u32>,
    /// The broker's ApiVersions answer, asked once when a versioned API is
    /// first used.
    pub(crate) broker_versions: Option<ApiVersionsResponse>,
    /// The broker's address as connected to (`ip:port`).
    peer: String,
}

impl Connection {
    /// Connects to a broker.
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?;
        crate::tcp::apply(&stream, peer);
        let peer = peer.to_string();
        let (read, write) = stream.into_split();
        Ok(Connection {
            writer: RequestWriter {
                half: write,
                next_id: 1,
                buf: Vec::with_capacity(4096),
            },
            reader: ResponseReader {
                half: read,
                buf: BytesMut::with_capacity(256 * 1024),
                answered: false,
            },
            in_flight: Default::default(),
            broker_versions: None,
            peer,
        })
    }

    /// Splits into halves that can be used from different tasks (pipelining
    /// with one task writing and another reading).
    pub fn into_split(self) -> (RequestWriter, ResponseReader) {
        (self.writer, self.reader)
    }

    /// Sends a request without waiting for its response; returns its
    /// correlation id. `tail` is raw bytes after the body (record batches).
    pub async fn send<T: Serialize>(
        &mut self,
        api: ApiKey,
        body: &T,
        tail: &[u8],
    ) -> Result<u32, ClientError> {
        let id = self.writer.send(api, body, tail).await?;
        self.in_flight.push_back(id);
        Ok(id)
    }

    /// [`send`](Self::send) with a given body version; `body` must be that
    /// version's type.
    pub async fn send_version<T: Serialize>(
        &mut self,
        api: ApiKey,
        version: u16,
        body: &T,
        tail: &[u8],
    ) -> Result<u32, ClientError> {
        let id = self.writer.send_version(api, version, body, tail).await?;
        self.in_flight.push_back(id);
        Ok(id)
    }

    /// Reads the next response frame: its header, body and tail.
    pub async fn recv_raw(&mut self) -> Result<(ResponseHeader, Bytes, Bytes), ClientError> {
        let (header, body, tail) = self.reader.recv_raw().await?;
        if let Some(expected) = self.in_flight.pop_front() {
            if expected != header.correlation_id {
                return Err(ClientError::OutOfOrder {
                    expected,
                    got: header.correlation_id,
                });
            }
        }
        Ok((header, body, tail))
    }

    /// Reads the next response and decodes its body as `T`; a frame-level
    /// error becomes [`ClientError::Broker`].
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<(T, Bytes), ClientError> {
        let (header, body, tail) = self.recv_raw().await?;
        if header.error_code != ErrorCode::None {
            return Err(refusal(&header, &body));
        }
        Ok((decode_body(&body)?, tail))
    }

    /// Reads the next frame of a FetchStream sent on this connection (see
    /// [`fetch_stream`](crate::fetch_stream)); the stream counts as
    /// answered once its `last` frame (or an error answer) is read. The
    /// frame's tail is not checked against its body here.
    pub(crate) async fn recv_stream_frame(
        &mut self,
    ) -> Result<(FetchStreamResponse, Bytes), ClientError> {
        let (header, body, tail) = self.reader.recv_raw().await?;
        if let Some(&expected) = self.in_flight.front()
            && expected != header.correlation_id
        {
            return Err(ClientError::OutOfOrder {
                expected,
                got: header.correlation_id,
            });
        }
        if header.error_code != ErrorCode::None {
            self.in_flight.pop_front();
            return Err(refusal(&header, &body));
        }
        let resp: FetchStreamResponse = decode_body(&body)?;
        if resp.last {
            self.in_flight.pop_front();
        }
        Ok((resp, tail))
    }

    /// Sends a request and waits for its response.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        api: ApiKey,
        body: &Req,
        tail: &[u8],
    ) -> Result<(Resp, Bytes), ClientError> {
        self.send(api, body, tail).await?;
        self.recv().await
    }

    /// The newest version of `api` both this build and the broker speak.
    /// The first call asks the broker (ApiVersions) and remembers the answer
    /// for the connection's life.
    pub async fn negotiated_version(&mut self, api: ApiKey) -> Result<u16, ClientError> {
        if self.broker_versions.is_none() {
            let (resp, _) = self
                .call::<_, ApiVersionsResponse>(ApiKey::ApiVersions, &ApiVersionsRequest {}, &[])
                .await?;
            self.broker_versions = Some(resp);
        }
        let (ours_min, ours_max) = api.versions();
        let theirs = self
            .broker_versions
            .as_ref()
            .and_then(|v| v.apis.iter().find(|r| r.api_key == api as u16));
        match theirs {
            Some(r) if r.max_version.min(ours_max) >= r.min_version.max(ours_min) => {
                Ok(r.max_version.min(ours_max))
            }
            _ => Err(ClientError::Unsupported(format!(
                "{api:?} in any version {ours_min}..={ours_max} this client speaks"
            ))),
        }
    }

    /// The broker's address as this connection reached it (`ip:port`).
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Metadata of some topics, or all. Against a broker that speaks only
    /// version 0, each topic's `config.compression` is `None` (unknown);
    /// against one older than version 2 (which runs alone), the brokers are
    /// that broker as node 0 at [`peer`](Self::peer), leader and only
    /// replica of every partition. A broker bound to an unspecified address
    /// (`0.0.0.0`, `::`) is listed at this connection's peer host with its
    /// advertised port, so the address can be dialled.
    pub async fn metadata(
        &mut self,
        topics: Option<Vec<String>>,
    ) -> Result<MetadataResponse, ClientError> {
        self.metadata_asking(topics, false).await
    }

    /// [`metadata`](Self::metadata) of `topics`, asking the broker to
    /// create those that do not exist first, with its defaults, if it
    /// creates topics on first use (its `auto_create_topics`; Kafka's
    /// `allow_auto_topic_creation`). A topic the broker did not create is
    /// answered as by `metadata`: `UnknownTopicOrPartition` when the broker
    /// does not create topics (or speaks Metadata only up to version 2),
    /// the reason it refused otherwise (`InvalidTopicName`, ...).
    pub async fn metadata_creating(
        &mut self,
        topics: Vec<String>,
    ) -> Result<MetadataResponse, ClientError> {
        self.metadata_asking(Some(topics), true).await
    }

    /// [`metadata`](Self::metadata), or with `allow_auto_create`
    /// [`metadata_creating`](Self::metadata_creating).
    pub(crate) async fn metadata_asking(
        &mut self,
        topics: Option<Vec<String>>,
        allow_auto_create: bool,
    ) -> Result<MetadataResponse, ClientError> {
        let version = self.negotiated_version(ApiKey::Metadata).await?;
        if version >= 3 {
            let req = MetadataRequestV3 {
                topics,
                allow_auto_create,
            };
            self.send_version(ApiKey::Metadata, version, &req, &[])
                .await?;
        } else {
            let req = MetadataRequest { topics };
            self.send_version(ApiKey::Metadata, version, &req, &[])
                .await?;
        }
        Ok(match version {
            0 => MetadataResponseV1::from(self.recv::<MetadataResponseV0>().await?.0)
                .single_broker(&self.peer),
            1 => self
                .recv::<MetadataResponseV1>()
                .await?
                .0
                .single_broker(&self.peer),
            _ => {
                let mut meta = self.recv::<MetadataResponse>().await?.0;
                for b in &mut meta.brokers {
                    if let Some(addr) = crate::metadata::reachable(&b.listen, &self.peer) {
                        b.listen = addr;
                    }
                }
                meta
            }
        })
    }

    /// Creates topics. A broker that speaks only version 0 cannot take a
    /// topic's `compression`, and one older than version 2 a replication
    /// factor other than 1: such a request fails with
    /// [`ClientError::Unsupported`] before anything is sent.
    pub async fn create_topics(
        &mut self,
        topics: Vec<NewTopic>,
    ) -> Result<CreateTopicsResponse, ClientError> {
        let version = self.negotiated_version(ApiKey::CreateTopics).await?;
        let req = CreateTopicsRequest { topics };
        let too_old = |what: &str| ClientError::Unsupported(what.to_owned());
        match version {
            0 => {
                let v0 = req.to_v0().ok_or_else(|| {
                    too_old("a topic's compression setting or replication factor (CreateTopics version 1 or 2)")
                })?;
                self.send_version(ApiKey::CreateTopics, 0, &v0, &[]).await?;
            }
            1 => {
                let v1 = req
                    .to_v1()
                    .ok_or_else(|| too_old("a replication factor (CreateTopics version 2)"))?;
                self.send_version(ApiKey::CreateTopics, 1, &v1, &[]).await?;
            }
            _ => {
                self.send_version(ApiKey::CreateTopics, version, &req, &[])
                    .await?;
            }
        }
        Ok(self.recv().await?.0)
    }

    /// Deletes topics.
    pub async fn delete_topics(
        &mut self,
        names: Vec<String>,
    ) -> Result<DeleteTopicsResponse, ClientError> {
        Ok(self
            .call(ApiKey::DeleteTopics, &DeleteTopicsRequest { names }, &[])
            .await?
            .0)
    }

    /// Produces record sets (each whole RecordBatch v2 batches) to
    /// partitions; `None` for `acks=none`, which has no response.
    pub async fn produce(
        &mut self,
        acks: Acks,
        timeout_ms: u32,
        sets: &[(&str, u32, &[u8])],
    ) -> Result<Option<ProduceResponse>, ClientError> {
        let req = ProduceRequest {
            acks,
            timeout_ms,
            partitions: sets
                .iter()
                .map(|(t, p, r)| ProducePartition {
                    topic: (*t).to_owned(),
                    partition: *p,
                    records_len: r.len() as u32,
                })
                .collect(),
        };
        let tail: Vec<u8> = if sets.len() == 1 {
            Vec::new()
        } else {
            sets.iter()
                .flat_map(|(_, _, r)| r.iter().copied())
                .collect()
        };
        let tail: &[u8] = if sets.len() == 1 { sets[0].2 } else { &tail };
        self.send(ApiKey::Produce, &req, tail).await?;
        if acks == Acks::None {
            self.in_flight.pop_back();
            return Ok(None);
        }
        Ok(Some(self.recv().await?.0))
    }

    /// Fetches from partitions; each result's records share one buffer.
    pub async fn fetch(
        &mut self,
        max_wait_ms: u32,
        min_bytes: u32,
        max_bytes: u32,
        partitions: Vec<FetchPartition>,
    ) -> Result<Vec<FetchedPartition>, ClientError> {
        self.send_fetch(max_wait_ms, min_bytes, max_bytes, partitions)
            .await?;
        self.recv_fetch().await
    }

    /// Sends a Fetch without waiting for its answer, so that a consumer can
    /// ask for the next records while it still works on the last ones (a
    /// prefetch); [`recv_fetch`](Connection::recv_fetch) reads the answers
    /// in the order the requests went out.
    pub async fn send_fetch(
        &mut self,
        max_wait_ms: u32,
        min_bytes: u32,
        max_bytes: u32,
        partitions: Vec<FetchPartition>,
    ) -> Result<u32, ClientError> {
        let req = FetchRequest {
            max_wait_ms,
            min_bytes,
            max_bytes,
            partitions,
        };
        self.send(ApiKey::Fetch, &req, &[]).await
    }

    /// Reads the answer of the oldest Fetch sent with
    /// [`send_fetch`](Connection::send_fetch); each result's records share
    /// one buffer.
    pub async fn recv_fetch(&mut self) -> Result<Vec<FetchedPartition>, ClientError> {
        let (resp, tail): (FetchResponse, Bytes) = self.recv().await?;
        resp.check_tail(tail.len())?;
        Ok(split_records(resp.partitions, &tail))
    }

    /// Looks up offsets.
    pub async fn list_offsets(
        &mut self,
        partitions: Vec<ListOffsetsPartition>,
    ) -> Result<ListOffsetsResponse, ClientError> {
        Ok(self
            .call(ApiKey::ListOffsets, &ListOffsetsRequest { partitions }, &[])
            .await?
            .0)
    }

    /// Commits a group's offsets as a simple commit (version 0: no
    /// generation, accepted only while the group has no members).
    pub async fn offset_commit(
        &mut self,
        group: &str,
        partitions: Vec<CommitPartition>,
    ) -> Result<OffsetCommitResponse, ClientError> {
        let req = OffsetCommitRequest {
            group: group.to_owned(),
            partitions,
        };
        self.send_version(ApiKey::OffsetCommit, 0, &req, &[])
            .await?;
        Ok(self.recv().await?.0)
    }

    /// Reads a group's committed offsets.
    pub async fn offset_fetch(
        &mut self,
        group: &str,
        partitions: Option<Vec<TopicPartitionRef>>,
    ) -> Result<OffsetFetchResponse, ClientError> {
        let req = OffsetFetchRequest {
            group: group.to_owned(),
            partitions,
        };
        Ok(self.call(ApiKey::OffsetFetch, &req, &[]).await?.0)
    }

    /// A fresh producer id and epoch for an idempotent producer.
    pub async fn init_producer_id(&mut self) -> Result<InitProducerIdResponse, ClientError> {
        let req = InitProducerIdRequest {};
        Ok(self.call(ApiKey::InitProducerId, &req, &[]).await?.0)
    }

    /// The broker's counters.
    pub async fn stats(&mut self) -> Result<StatsResponse, ClientError> {
        Ok(self.call(ApiKey::Stats, &StatsRequest {}, &[]).await?.0)
    }

    /// Raises topics' partition counts (CreatePartitions).
    pub async fn create_partitions(
        &mut self,
        req: &CreatePartitionsRequest,
    ) -> Result<CreatePartitionsResponse, ClientError> {
        Ok(self.call(ApiKey::CreatePartitions, req, &[]).await?.0)
    }

    /// Changes topics' settings (AlterTopicConfig).
    pub async fn alter_topic_config(
        &mut self,
        req: &AlterTopicConfigRequest,
    ) -> Result<AlterTopicConfigResponse, ClientError> {
        Ok(self.call(ApiKey::AlterTopicConfig, req, &[]).await?.0)
    }

    /// Deletes the records at the start of partitions (DeleteRecords); in
    /// a cluster each partition's leader must be asked.
    pub async fn delete_records(
        &mut self,
        req: &DeleteRecordsRequest,
    ) -> Result<DeleteRecordsResponse, ClientError> {
        Ok(self.call(ApiKey::DeleteRecords, req, &[]).await?.0)
    }

    /// What each partition of `topics` holds on disk (PartitionStatus).
    pub async fn partition_status(
        &mut self,
        topics: Vec<String>,
    ) -> Result<PartitionStatusResponse, ClientError> {
        let req = PartitionStatusRequest { topics };
        Ok(self.call(ApiKey::PartitionStatus, &req, &[]).await?.0)
    }

    /// The broker's version, uptime, addresses, disk space and connections:
    /// version 1's answer from a broker that speaks it (ApiVersions is asked
    /// once per connection); from one that speaks only version 0, its
    /// answer with `kafka_listen` empty and `node_id` `None`.
    pub async fn broker_status(&mut self) -> Result<BrokerStatusResponse, ClientError> {
        let request = BrokerStatusRequest {};
        if self.negotiated_version(ApiKey::BrokerStatus).await? >= 1 {
            self.send_version(ApiKey::BrokerStatus, 1, &request, &[])
                .await?;
            return Ok(self.recv().await?.0);
        }
        self.send_version(ApiKey::BrokerStatus, 0, &request, &[])
            .await?;
        let (v0, _) = self.recv().await?;
        Ok(BrokerStatusResponse {
            v0,
            kafka_listen: String::new(),
            node_id: None,
        })
    }

    /// Writes raw bytes (for tests of hostile input).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.write_raw(bytes).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly on purpose

    use std::sync::{Arc, Mutex};

    use sluice_protocol::wire::api_versions::ApiVersionRange;
    use sluice_protocol::wire::create_topics::{CreateTopicsRequestV0, TopicResult};
    use sluice_protocol::wire::metadata::{PartitionMetadataV1, TopicMetadataV0};
    use sluice_protocol::wire::topic_config::{TopicCompression, TopicConfig, TopicConfigV0};
    use tokio::net::TcpListener;

    use super::*;

    /// A stand-in for a broker from before version 1 of Metadata and
    /// CreateTopics: it speaks version 0 of every API, refuses any other
    /// version, and records the `(api_key, api_version)` of each request.
    async fn old_broker() -> (std::net::SocketAddr, Arc<Mutex<Vec<(u16, u16)>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            loop {
                let mut frame = vec![0u8; 4];
                if s.read_exact(&mut frame).await.is_err() {
                    return;
                }
                let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
                frame.resize(4 + len, 0);
                s.read_exact(&mut frame[4..]).await.unwrap();
                let (h, _) = RequestHeader::decode(&frame).unwrap();
                log.lock().unwrap().push((h.api_key, h.api_version));
                let body = &frame[16..16 + h.body_len as usize];
                let mut out = Vec::new();
                let code = if h.api_version != 0 {
                    encode_body(
                        &ErrorBody {
                            message: "no".into(),
                        },
                        &mut out,
                    );
                    ErrorCode::UnsupportedVersion
                } else if h.api_key == ApiKey::ApiVersions as u16 {
                    let apis = ApiKey::ALL
                        .iter()
                        .map(|k| ApiVersionRange {
                            api_key: *k as u16,
                            min_version: 0,
                            max_version: 0,
                        })
                        .collect();
                    encode_body(&ApiVersionsResponse { apis }, &mut out);
                    ErrorCode::None
                } else if h.api_key == ApiKey::Metadata as u16 {
                    let topics = vec![TopicMetadataV0 {
                        name: "t".into(),
                        error_code: ErrorCode::None,
                        partitions: vec![PartitionMetadataV1 {
                            partition: 0,
                            error_code: ErrorCode::None,
                            log_start_offset: 0,
                            high_watermark: 0,
                        }],
                        config: TopicConfigV0 {
                            retention_ms: Some(7),
                            ..TopicConfigV0::default()
                        },
                    }];
                    encode_body(&MetadataResponseV0 { topics }, &mut out);
                    ErrorCode::None
                } else {
                    let req: CreateTopicsRequestV0 = decode_body(body).unwrap();
                    let results = req
                        .topics
                        .into_iter()
                        .map(|t| TopicResult {
                            name: t.name,
                            error_code: ErrorCode::None,
                            message: None,
                        })
                        .collect();
                    encode_body(&CreateTopicsResponse { results }, &mut out);
                    ErrorCode::None
                };
                let header = ResponseHeader {
                    correlation_id: h.correlation_id,
                    error_code: code,
                    body_len: out.len() as u32,
                }
                .encode(0)
                .unwrap();
                s.write_all(&[&header[..], &out].concat()).await.unwrap();
            }
        });
        (addr, seen)
    }

    #[tokio::test]
    async fn an_old_broker_gets_version_0_and_no_compression_setting() {
        let (addr, seen) = old_broker().await;
        let mut c = Connection::connect(addr).await.unwrap();
        let meta = c.metadata(None).await.unwrap();
        assert_eq!(meta.topics[0].config.retention_ms, Some(7));
        assert_eq!(meta.topics[0].config.compression, None);
        // An old broker runs alone: it leads everything, at its address.
        assert_eq!(meta.leader("t", 0), Some(Some(0)));
        assert_eq!(meta.broker_address(0), Some(addr.to_string().as_str()));
        let topic = |compression, replication_factor| NewTopic {
            name: "n".into(),
            partitions: 1,
            config: TopicConfig {
                compression,
                ..TopicConfig::default()
            },
            replication_factor,
        };
        let r = c
            .create_topics(vec![topic(None, None), topic(None, Some(1))])
            .await
            .unwrap();
        assert_eq!(r.results[0].error_code, ErrorCode::None);
        assert_eq!(r.results[1].error_code, ErrorCode::None);
        let err = c
            .create_topics(vec![topic(Some(TopicCompression::Zstd), None)])
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("compression"), "{err}");
        let err = c
            .create_topics(vec![topic(None, Some(3))])
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Unsupported(_)), "{err}");
        // ApiVersions once, then version 0 of each; the refused creates
        // sent nothing.
        assert_eq!(*seen.lock().unwrap(), [(0, 0), (1, 0), (2, 0)]);
    }
}
