//! The storage node's internal service: Arrow Flight for writes from
//! collectors (`DoPut`), shard scans for query nodes (`DoGet`), node info
//! and the newest span start of shards (`DoAction`), plus the gRPC
//! health-checking protocol, on one port.
//! The messages are defined in [`skein_model::cluster`].

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse,
    PollInfo, PutResult, SchemaResult, Ticket,
};
use base64::Engine as _;
use datafusion::arrow::compute::concat_batches;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion_proto::bytes::Serializeable;
use futures::{Stream, StreamExt, TryStreamExt};
use skein_model::cluster::{
    ACTION_NEWEST_SPAN_START, ACTION_NODE_INFO, MAX_MESSAGE_BYTES, NodeInfo, PutCommand, ScanTicket, ShardInfo,
    SpanStartBound, SpanStartQuery, check_addressing, write_error_to_status,
};
use skein_model::security::{SecureIncoming, TlsReloader};
use skein_model::{ShardWriter, TableKind, WriteError, WriteReceipt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use crate::error::{IoContext, StorageError};
use crate::tenants::tenant_write_error;
use crate::{Storage, TenantStorages};

/// What every shard of one scan ticket is read with.
struct ShardScan<'a> {
    ctx: &'a SessionContext,
    ticket: &'a ScanTicket,
    filters: &'a [Expr],
    /// The projection's column names (used when the ticket has one).
    columns: &'a [&'a str],
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The Flight service over this node's shards, each tenant's in that
/// tenant's storage.
#[derive(Debug, Clone)]
pub struct StorageFlight {
    tenants: Arc<TenantStorages>,
    node_id: String,
}

impl StorageFlight {
    pub fn new(tenants: Arc<TenantStorages>, node_id: String) -> Self {
        Self { tenants, node_id }
    }

    /// The storage of `tenant` (opened on first use) if it holds `shard`
    /// and the request was meant for this node and cluster.
    async fn check(
        &self,
        tenant: &str,
        request_node: &str,
        request_shard_count: usize,
        shard: usize,
    ) -> Result<Arc<Storage>, Status> {
        let storage =
            self.tenants.get(tenant).await.map_err(|e| write_error_to_status(&tenant_write_error(tenant, e)))?;
        let owns = storage.holds_shard(shard);
        check_addressing(&self.node_id, storage.shard_count(), request_node, request_shard_count, owns, shard)
            .map_err(Status::failed_precondition)?;
        Ok(storage)
    }

    /// What this node holds (the shards of `default`, which every tenant
    /// follows; lag summed over tenants), for health checks and cluster status.
    pub fn node_info(&self) -> NodeInfo {
        let storage = self.tenants.default_tenant();
        let shards = storage
            .local_shards()
            .into_iter()
            .map(|shard| ShardInfo { shard, unflushed_bytes: self.tenants.unflushed_bytes(shard).unwrap_or(0) })
            .collect();
        NodeInfo {
            node_id: self.node_id.clone(),
            shard_count: storage.shard_count(),
            shards,
            failover: storage.wal_placement() == crate::WalPlacement::ObjectStore,
            draining: self.tenants.is_draining() || storage.is_draining(),
        }
    }

    /// The newest span start in the shards `query` names, from each shard's
    /// trace-part statistics (manifests and buffers; no file is read).
    async fn newest_span_start(&self, query: SpanStartQuery) -> Result<SpanStartBound, Status> {
        let mut newest = i64::MIN;
        for &shard in &query.shards {
            let storage = self.check(&query.tenant, &query.node_id, query.shard_count, shard).await?;
            let bound = storage
                .shard_provider(TableKind::TraceParts, shard)
                .and_then(|parts| parts.statistics())
                .and_then(|statistics| skein_model::trace_parts::newest_span_start_bound(&statistics))
                .ok_or_else(|| Status::unavailable(format!("shard {shard} cannot bound its span starts now")))?;
            newest = newest.max(bound);
        }
        Ok(SpanStartBound { newest_span_start_ns: newest })
    }

    fn scan_session() -> SessionContext {
        let mut config = SessionConfig::new();
        // Storage serves plain Utf8 columns, as the query side expects.
        config.options_mut().execution.parquet.schema_force_view_types = false;
        SessionContext::new_with_config(config)
    }

    /// The rows of every shard `ticket` names, in one stream (one plan:
    /// a union of the shards' scans, each filtered, projected and limited).
    async fn scan(&self, ticket: ScanTicket) -> Result<BoxStream<FlightData>, Status> {
        let ctx = Self::scan_session();
        let task_ctx = ctx.task_ctx();
        let mut filters = Vec::with_capacity(ticket.filters.len());
        for encoded in &ticket.filters {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| Status::invalid_argument(format!("a scan filter is not base64: {e}")))?;
            let filter = Expr::from_bytes_with_ctx(&bytes, &task_ctx)
                .map_err(|e| Status::invalid_argument(format!("a scan filter does not decode: {e}")))?;
            filters.push(filter);
        }
        let schema = ticket.table.schema();
        let mut columns = Vec::new();
        for &index in ticket.projection.iter().flatten() {
            let field = schema.fields().get(index).ok_or_else(|| {
                Status::invalid_argument(format!("column {index} is past the {} schema", ticket.table))
            })?;
            columns.push(field.name().as_str());
        }
        let scan = ShardScan { ctx: &ctx, ticket: &ticket, filters: &filters, columns: &columns };
        let mut frame = self.shard_frame(&scan, ticket.shard).await?;
        for &shard in &ticket.more_shards {
            frame = frame.union(self.shard_frame(&scan, shard).await?).map_err(datafusion_status)?;
        }
        let stream = frame.execute_stream().await.map_err(datafusion_status)?;
        let schema = stream.schema();
        let batches = stream.map_err(|e| FlightError::ExternalError(Box::new(e)));
        let encoded = FlightDataEncoderBuilder::new().with_schema(schema).build(batches);
        Ok(Box::pin(encoded.map_err(Status::from)))
    }

    /// One shard's rows of `scan`: filtered, projected and limited.
    async fn shard_frame(&self, scan: &ShardScan<'_>, shard: usize) -> Result<DataFrame, Status> {
        let ticket = scan.ticket;
        let storage = self.check(&ticket.tenant, &ticket.node_id, ticket.shard_count, shard).await?;
        let table = storage
            .shard_provider(ticket.table, shard)
            .ok_or_else(|| Status::failed_precondition(format!("shard {shard} is not open here")))?;
        let mut frame = scan.ctx.read_table(table).map_err(datafusion_status)?;
        for filter in scan.filters {
            frame = frame.filter(filter.clone()).map_err(datafusion_status)?;
        }
        if ticket.projection.is_some() {
            frame = frame.select_columns(scan.columns).map_err(datafusion_status)?;
        }
        if let Some(limit) = ticket.limit {
            frame = frame.limit(0, Some(limit)).map_err(datafusion_status)?;
        }
        Ok(frame)
    }

    async fn put(&self, mut stream: Streaming<FlightData>) -> Result<WriteReceipt, Status> {
        let first = stream.message().await?.ok_or_else(|| Status::invalid_argument("empty DoPut stream"))?;
        let command: PutCommand = first
            .flight_descriptor
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("the first DoPut message has no descriptor"))
            .and_then(|d| {
                serde_json::from_slice(&d.cmd)
                    .map_err(|e| Status::invalid_argument(format!("the DoPut command is not a write: {e}")))
            })?;
        let storage = match self.check(&command.tenant, &command.node_id, command.shard_count, command.shard).await {
            Ok(storage) => storage,
            Err(status) => {
                warn!(shard = command.shard, node = %command.node_id, tenant = %command.tenant, error = %status.message(), "write refused");
                return Err(status);
            }
        };
        let messages =
            futures::stream::once(async { Ok(first) }).chain(stream).map_err(|e| FlightError::Tonic(Box::new(e)));
        let batches: Vec<_> = FlightRecordBatchStream::new_from_flight_data(messages)
            .try_collect()
            .await
            .map_err(|e| Status::invalid_argument(format!("the DoPut stream is not valid Arrow data: {e}")))?;
        let schema = command.signal.schema();
        let batch = concat_batches(&schema, &batches)
            .map_err(|e| Status::invalid_argument(format!("rows do not fit the {} schema: {e}", command.signal)))?;
        if batch.num_rows() == 0 {
            return Ok(WriteReceipt::STORED);
        }
        let written = storage.write(command.signal, command.shard, batch).await;
        written.map_err(|e| match e {
            WriteError::NoSuchShard(shard) => Status::failed_precondition(format!("shard {shard} is not open here")),
            other => write_error_to_status(&other),
        })
    }
}

fn datafusion_status(error: datafusion::error::DataFusionError) -> Status {
    Status::internal(format!("scan failed: {error}"))
}

#[tonic::async_trait]
impl FlightService for StorageFlight {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoExchangeStream = BoxStream<FlightData>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(Status::unimplemented("handshake is not used"))
    }

    async fn list_flights(&self, _request: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(Status::unimplemented("list_flights is not used"))
    }

    async fn get_flight_info(&self, _request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        Err(Status::unimplemented("get_flight_info is not used; scan with DoGet"))
    }

    async fn poll_flight_info(&self, _request: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented("poll_flight_info is not used"))
    }

    async fn get_schema(&self, _request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        Err(Status::unimplemented("get_schema is not used"))
    }

    async fn do_get(&self, request: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        let ticket: ScanTicket = serde_json::from_slice(&request.get_ref().ticket)
            .map_err(|e| Status::invalid_argument(format!("the ticket is not a scan: {e}")))?;
        Ok(Response::new(self.scan(ticket).await?))
    }

    async fn do_put(&self, request: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        let receipt = self.put(request.into_inner()).await?;
        // A write that stored every row answers with empty metadata, as
        // before receipts existed.
        let app_metadata = if receipt == WriteReceipt::STORED {
            Default::default()
        } else {
            serde_json::to_vec(&receipt)
                .map_err(|e| Status::internal(format!("encoding the write receipt: {e}")))?
                .into()
        };
        let done = futures::stream::once(async { Ok(PutResult { app_metadata }) });
        Ok(Response::new(Box::pin(done)))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("do_exchange is not used"))
    }

    async fn do_action(&self, request: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        let action = request.into_inner();
        let body = match action.r#type.as_str() {
            ACTION_NODE_INFO => serde_json::to_vec(&self.node_info()),
            ACTION_NEWEST_SPAN_START => {
                let query: SpanStartQuery = serde_json::from_slice(&action.body)
                    .map_err(|e| Status::invalid_argument(format!("the body is not a span start query: {e}")))?;
                serde_json::to_vec(&self.newest_span_start(query).await?)
            }
            other => return Err(Status::invalid_argument(format!("unknown action {other:?}"))),
        };
        let body = body.map_err(|e| Status::internal(e.to_string()))?;
        let result = arrow_flight::Result { body: body.into() };
        Ok(Response::new(Box::pin(futures::stream::once(async { Ok(result) }))))
    }

    async fn list_actions(&self, _request: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        let actions = [
            (ACTION_NODE_INFO, "node ID, shards, lag"),
            (ACTION_NEWEST_SPAN_START, "an upper bound of the span starts in some shards"),
        ]
        .map(|(kind, description)| Ok(ActionType { r#type: kind.into(), description: description.into() }));
        Ok(Response::new(Box::pin(futures::stream::iter(actions))))
    }
}

/// How long a connection to the internal port may take to finish its TLS
/// handshake (or, in clear text, to send its first byte).
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The internal listener of a storage node: Flight and gRPC health.
#[derive(Debug)]
pub struct InternalServer {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    flight: StorageFlight,
    /// `[cluster.tls]`: TLS with client certificates required.
    tls: Option<Arc<TlsReloader>>,
}

impl InternalServer {
    /// Binds `addr` (port 0 allowed); nothing is served until `serve`.
    pub async fn bind(
        addr: SocketAddr,
        flight: StorageFlight,
        tls: Option<Arc<TlsReloader>>,
    ) -> Result<Self, StorageError> {
        let listener = tokio::net::TcpListener::bind(addr).await.ctx(|| format!("binding internal port {addr}"))?;
        let local_addr = listener.local_addr().ctx(|| "reading the internal address".into())?;
        Ok(Self { listener, local_addr, flight, tls })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` is cancelled; then health turns NOT_SERVING,
    /// new calls are refused and in-flight calls finish.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), StorageError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<FlightServiceServer<StorageFlight>>().await;
        let service = FlightServiceServer::new(self.flight)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let tls = self.tls.is_some();
        let incoming = SecureIncoming::spawn("internal", self.listener, self.tls, HANDSHAKE_TIMEOUT, shutdown.clone())
            .ctx(|| "accepting on the internal port".into())?;
        info!(addr = %self.local_addr, tls, "storage internal port serving");
        let stopping = {
            let health = health.clone();
            async move {
                shutdown.cancelled().await;
                health.set_not_serving::<FlightServiceServer<StorageFlight>>().await;
            }
        };
        tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(service)
            .serve_with_incoming_shutdown(incoming.into_stream(), stopping)
            .await
            .map_err(|e| StorageError::Task(format!("internal server: {e}")))
    }
}
