//! A connection to one broker: sends framed requests, reads framed
//! responses. Requests may be pipelined: [`Connection::send`] several, then
//! [`Connection::recv`] their responses, which come back in request order.

use bytes::{Buf, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_protocol::wire::broker_status::{BrokerStatusRequest, BrokerStatusResponse};
use sluice_protocol::wire::create_topics::{CreateTopicsRequest, CreateTopicsResponse, NewTopic};
use sluice_protocol::wire::delete_topics::{DeleteTopicsRequest, DeleteTopicsResponse};
use sluice_protocol::wire::fetch::{FetchPartition, FetchRequest, FetchResponse};
use sluice_protocol::wire::frame::{LEN_PREFIX, RESPONSE_HEADER_LEN};
use sluice_protocol::wire::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use sluice_protocol::wire::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsResponse,
};
use sluice_protocol::wire::metadata::{MetadataRequest, MetadataResponse};
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
    pub async fn send<T: Serialize>(
        &mut self,
        api: ApiKey,
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
            api_version: api.versions().1,
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

/// The receiving half of a connection: reads and splits response frames.
#[derive(Debug)]
pub struct ResponseReader {
    half: OwnedReadHalf,
    buf: BytesMut,
}

impl ResponseReader {
    /// Reads the next response frame: its header, body and tail. The tail
    /// shares the frame's buffer (no copy).
    pub async fn recv_raw(&mut self) -> Result<(ResponseHeader, Bytes, Bytes), ClientError> {
        let total = loop {
            if let Some(total) = check_frame(&self.buf, MAX_RESPONSE_BYTES, RESPONSE_HEADER_LEN)? {
                break total;
            }
            if self.buf.len() >= LEN_PREFIX {
                let want = LEN_PREFIX + (&self.buf[..4]).get_u32() as usize;
                self.buf.reserve(want.saturating_sub(self.buf.len()));
            } else {
                self.buf.reserve(64 * 1024);
            }
            if self.half.read_buf(&mut self.buf).await? == 0 {
                return Err(ClientError::Closed);
            }
        };
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
            let message = decode_body::<ErrorBody>(&body)
                .map(|b| b.message)
                .unwrap_or_default();
            return Err(ClientError::Broker {
                code: header.error_code,
                message,
            });
        }
        Ok((header.correlation_id, decode_body(&body)?, tail))
    }
}

/// A connection to a broker.
#[derive(Debug)]
pub struct Connection {
    writer: RequestWriter,
    reader: ResponseReader,
    in_flight: std::collections::VecDeque<u32>,
}

impl Connection {
    /// Connects to a broker.
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
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
            },
            in_flight: Default::default(),
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
            let message = decode_body::<ErrorBody>(&body)
                .map(|b| b.message)
                .unwrap_or_default();
            return Err(ClientError::Broker {
                code: header.error_code,
                message,
            });
        }
        Ok((decode_body(&body)?, tail))
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

    /// Metadata of some topics, or all.
    pub async fn metadata(
        &mut self,
        topics: Option<Vec<String>>,
    ) -> Result<MetadataResponse, ClientError> {
        Ok(self
            .call(ApiKey::Metadata, &MetadataRequest { topics }, &[])
            .await?
            .0)
    }

    /// Creates topics.
    pub async fn create_topics(
        &mut self,
        topics: Vec<NewTopic>,
    ) -> Result<CreateTopicsResponse, ClientError> {
        Ok(self
            .call(ApiKey::CreateTopics, &CreateTopicsRequest { topics }, &[])
            .await?
            .0)
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
        let req = FetchRequest {
            max_wait_ms,
            min_bytes,
            max_bytes,
            partitions,
        };
        let (resp, tail): (FetchResponse, Bytes) = self.call(ApiKey::Fetch, &req, &[]).await?;
        resp.check_tail(tail.len())?;
        let mut at = 0usize;
        Ok(resp
            .partitions
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
            .collect())
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

    /// Commits a group's offsets.
    pub async fn offset_commit(
        &mut self,
        group: &str,
        partitions: Vec<CommitPartition>,
    ) -> Result<OffsetCommitResponse, ClientError> {
        let req = OffsetCommitRequest {
            group: group.to_owned(),
            partitions,
        };
        Ok(self.call(ApiKey::OffsetCommit, &req, &[]).await?.0)
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

    /// What each partition of `topics` holds on disk (PartitionStatus).
    pub async fn partition_status(
        &mut self,
        topics: Vec<String>,
    ) -> Result<PartitionStatusResponse, ClientError> {
        let req = PartitionStatusRequest { topics };
        Ok(self.call(ApiKey::PartitionStatus, &req, &[]).await?.0)
    }

    /// The broker's version, uptime, addresses, disk space and connections.
    pub async fn broker_status(&mut self) -> Result<BrokerStatusResponse, ClientError> {
        Ok(self
            .call(ApiKey::BrokerStatus, &BrokerStatusRequest {}, &[])
            .await?
            .0)
    }

    /// Writes raw bytes (for tests of hostile input).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.write_raw(bytes).await
    }
}
