//! The OTLP logs service client for requests already encoded
//! ([`super::logs_wire::LogsBatch`]): the same gRPC call the generated
//! `LogsServiceClient` makes (`LogsService/Export`, same compression, same
//! response type), with a codec that writes the request's bytes as they
//! are instead of encoding a message.

use bytes::{BufMut as _, Bytes};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use tonic::{
    Request, Response, Status,
    client::Grpc,
    codec::{Codec, CompressionEncoding, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
    transport::Channel,
};
use tonic_prost::ProstDecoder;

/// The gRPC method of an OTLP logs export.
const EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// Sends encoded requests, decodes the response with prost.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

/// Writes a request's bytes as they are.
#[derive(Debug, Clone, Copy, Default)]
struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportLogsServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ProstDecoder<ExportLogsServiceResponse>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

/// An OTLP/gRPC logs client sending encoded `ExportLogsServiceRequest`s.
#[derive(Debug, Clone)]
pub(super) struct RawLogsClient {
    inner: Grpc<Channel>,
}

impl RawLogsClient {
    /// A client on `channel`, compressing requests when `gzip`.
    pub(super) fn new(channel: Channel, gzip: bool) -> RawLogsClient {
        let inner = Grpc::new(channel);
        RawLogsClient {
            inner: match gzip {
                true => inner.send_compressed(CompressionEncoding::Gzip),
                false => inner,
            },
        }
    }

    /// One export call with the request's bytes.
    pub(super) async fn export(
        &mut self,
        request: Request<Bytes>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| Status::unknown(format!("Service was not ready: {e}")))?;
        self.inner
            .unary(request, PathAndQuery::from_static(EXPORT), RawCodec)
            .await
    }
}
