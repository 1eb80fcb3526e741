//! Keeps `/api/v1/sql` read-only: one statement, of a read-only kind,
//! whose plan contains no DDL, DML or session statements and reads only
//! Skein's tables (`spans`, `metrics` and the metric views).
//!
//! The check happens twice on purpose. The parsed statement is checked so
//! that refusals name what was refused (`COPY`, `CREATE EXTERNAL TABLE`)
//! before anything is planned; the logical plan is checked with
//! DataFusion's `SQLOptions` and for the tables it scans, which also
//! catches writes hidden inside queries (`SELECT ... INTO`) and any table
//! function able to read files or URLs.

use std::collections::HashSet;

use datafusion::catalog::TableProvider;
use datafusion::catalog::cte_worktable::CteWorkTable;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::ViewTable;
use datafusion::datasource::default_table_source::source_as_provider;
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::logical_plan::TableScan;
use datafusion::prelude::{DataFrame, SQLOptions, SessionContext};
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::QueryError;
use crate::engine::{METRICS_TABLE, SPAN_METRICS_TABLE, SPANS_TABLE};
use crate::federation::FederatedTable;

/// Table functions that only generate values (DataFusion's defaults).
const SAFE_TABLE_FUNCTIONS: [&str; 2] = ["generate_series", "range"];

const READ_ONLY: &str = "only read-only queries are allowed (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE)";

/// Parses, checks and plans `sql`; the returned frame has not run yet.
pub(crate) async fn plan_read_only(
    ctx: &SessionContext,
    sql: &str,
    memory_limit: usize,
) -> Result<DataFrame, QueryError> {
    let df_error = |e| QueryError::from_datafusion(e, memory_limit);
    let state = ctx.state();
    let recursion_limit = state.config().options().sql_parser.recursion_limit.get();
    let mut statements = DFParserBuilder::new(sql)
        .with_dialect(&GenericDialect {})
        .with_recursion_limit(recursion_limit)
        .build()
        .and_then(|mut parser| parser.parse_statements())
        .map_err(df_error)?;
    let statement = match (statements.pop_front(), statements.len()) {
        (None, _) => return Err(QueryError::InvalidRequest("no SQL statement was given".into())),
        (Some(statement), 0) => statement,
        (Some(_), more) => {
            return Err(QueryError::InvalidRequest(format!("send one SQL statement per request (got {})", more + 1)));
        }
    };
    check_statement(&statement)?;
    let plan = state.statement_to_plan(statement).await.map_err(df_error)?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| QueryError::Refused(format!("{READ_ONLY}: {}", e.find_root().message())))?;
    check_tables(&plan)?;
    check_no_parameters(plan.get_parameter_names().map_err(df_error)?)?;
    ctx.execute_logical_plan(plan).await.map_err(df_error)
}

/// Accepts only statement kinds that read.
fn check_statement(statement: &Statement) -> Result<(), QueryError> {
    match statement {
        Statement::Statement(inner) => check_sql_statement(inner),
        Statement::Explain(explain) => check_statement(&explain.statement),
        Statement::CreateExternalTable(_) => Err(refused("CREATE EXTERNAL TABLE")),
        Statement::CopyTo(_) => Err(refused("COPY")),
        Statement::Reset(_) => Err(refused("RESET")),
    }
}

fn check_sql_statement(statement: &SqlStatement) -> Result<(), QueryError> {
    match statement {
        SqlStatement::Query(_)
        | SqlStatement::ShowTables { .. }
        | SqlStatement::ShowColumns { .. }
        | SqlStatement::ShowVariable { .. }
        | SqlStatement::ShowFunctions { .. }
        | SqlStatement::ShowCreate { .. }
        | SqlStatement::ExplainTable { .. } => Ok(()),
        SqlStatement::Explain { statement, .. } => check_sql_statement(statement),
        other => Err(refused(&statement_keywords(other))),
    }
}

fn refused(what: &str) -> QueryError {
    QueryError::Refused(format!("{READ_ONLY}; {what} is not"))
}

/// The leading keywords of a statement, e.g. `CREATE TABLE` or `INSERT`.
fn statement_keywords(statement: &SqlStatement) -> String {
    let text = statement.to_string();
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or_default().to_ascii_uppercase();
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" | "TRUNCATE" => {
            let second = words.next().unwrap_or_default().to_ascii_uppercase();
            format!("{first} {second}").trim_end().to_owned()
        }
        _ => first,
    }
}

/// Every table the plan scans must be a federated table, a view that reads
/// only allowed tables, the information schema, a recursive CTE's work
/// table or a value-generating table function.
fn check_tables(plan: &LogicalPlan) -> Result<(), QueryError> {
    let mut refused_table = None;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && !allowed_scan(scan)
        {
            refused_table = Some(scan.table_name.to_string());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| QueryError::Execution(e.to_string()))?;
    match refused_table {
        Some(table) => Err(QueryError::Refused(format!(
            "queries may read only the {SPANS_TABLE}, {METRICS_TABLE} and {SPAN_METRICS_TABLE} tables, their \
             views and information_schema, not {table}"
        ))),
        None => Ok(()),
    }
}

/// Placeholders (`$1`, `:name`) have no values over HTTP; without this
/// check they fail only at execution, as an internal error (found by
/// fuzzing).
fn check_no_parameters(names: HashSet<String>) -> Result<(), QueryError> {
    if names.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort();
    Err(QueryError::InvalidRequest(format!(
        "query parameters are not supported (found {}): write the values into the SQL",
        names.join(", ")
    )))
}

fn allowed_scan(scan: &TableScan) -> bool {
    let table = &scan.table_name;
    if table.schema() == Some("information_schema") {
        return true;
    }
    if let Ok(provider) = source_as_provider(&scan.source) {
        let provider: &dyn TableProvider = provider.as_ref();
        if provider.is::<FederatedTable>() || provider.is::<CteWorkTable>() {
            return true;
        }
        // Only the engine registers views (CREATE VIEW is refused), but a
        // view is allowed for what it reads, not for being a view.
        if let Some(view) = provider.downcast_ref::<ViewTable>() {
            return check_tables(view.logical_plan()).is_ok();
        }
    }
    table.schema().is_none() && SAFE_TABLE_FUNCTIONS.contains(&table.table().trim_end_matches("()"))
}

#[cfg(test)]
mod tests {
    use crate::QueryError;
    use crate::test_support::engine;

    async fn refusal(sql: &str) -> String {
        match engine().sql(sql).await {
            Err(err @ QueryError::Refused(_)) => err.to_string(),
            other => panic!("{sql}: expected a refusal, got {other:?}"),
        }
    }

    /// Found by fuzzing: a placeholder used to fail at execution, as a 500.
    #[tokio::test]
    async fn refuses_query_parameters_as_bad_requests() {
        for (sql, names) in [
            ("SELECT * FROM spans WHERE :start_time > now()", ":start_time"),
            ("SELECT $2, name FROM spans WHERE duration_ns > $1", "$1, $2"),
        ] {
            match engine().sql(sql).await {
                Err(QueryError::InvalidRequest(message)) => assert!(message.contains(names), "{sql}: {message}"),
                other => panic!("{sql}: expected a bad request, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn refuses_writes_ddl_and_session_statements() {
        let cases = [
            ("CREATE TABLE t (x INT)", "CREATE TABLE"),
            ("CREATE TABLE t AS SELECT * FROM spans", "CREATE TABLE"),
            ("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'", "CREATE EXTERNAL TABLE"),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
            ("INSERT INTO spans SELECT * FROM spans", "INSERT"),
            ("DELETE FROM spans", "DELETE"),
            ("UPDATE spans SET name = 'x'", "UPDATE"),
            ("COPY spans TO '/tmp/out.parquet'", "COPY"),
            ("COPY (SELECT 1) TO '/tmp/out.csv'", "COPY"),
            ("DROP TABLE spans", "DROP TABLE"),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("RESET datafusion.execution.batch_size", "RESET"),
            ("EXPLAIN COPY spans TO '/tmp/out.parquet'", "COPY"),
            ("EXPLAIN CREATE TABLE t (x INT)", "CREATE TABLE"),
        ];
        for (sql, what) in cases {
            let message = refusal(sql).await;
            assert!(message.contains("read-only") && message.contains(what), "{sql}: {message}");
        }
    }

    #[tokio::test]
    async fn refuses_writes_inside_queries() {
        let message = refusal("SELECT * INTO t FROM spans").await;
        assert!(message.contains("read-only"), "{message}");
    }

    #[tokio::test]
    async fn refuses_files_and_urls_as_tables() {
        for sql in [
            "SELECT * FROM '/etc/passwd'",
            "SELECT * FROM 'https://example.com/data.parquet'",
            "SELECT * FROM read_parquet('/tmp/x.parquet')",
            "SELECT * FROM read_csv('/etc/passwd')",
        ] {
            let err = engine().sql(sql).await.expect_err(sql);
            assert_eq!(err.class(), skein_model::ErrorClass::InvalidArgument, "{sql}: {err}");
        }
    }

    #[tokio::test]
    async fn refuses_several_statements() {
        let err = engine().sql("SELECT 1; DROP TABLE spans").await.expect_err("two statements");
        assert!(err.to_string().contains("one SQL statement"), "{err}");
        let err = engine().sql("  ").await.expect_err("none");
        assert!(err.to_string().contains("no SQL statement"), "{err}");
    }

    #[tokio::test]
    async fn allows_reads() {
        let engine = engine();
        for sql in [
            "SELECT name FROM spans",
            "WITH s AS (SELECT name FROM spans) SELECT count(*) FROM s",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
            "EXPLAIN SELECT * FROM spans WHERE trace_id = 'ab'",
            "EXPLAIN ANALYZE SELECT count(*) FROM spans",
            "SHOW TABLES",
            "SHOW COLUMNS FROM spans",
            "DESCRIBE spans",
            "SHOW datafusion.execution.batch_size",
            "SELECT * FROM information_schema.columns WHERE table_name = 'spans'",
            "SELECT count(*) FROM generate_series(1, 10)",
            "SELECT * FROM spans WHERE trace_id IN (SELECT trace_id FROM spans WHERE status_code = 'error')",
            "SELECT metric_name, count(*) FROM metrics GROUP BY 1",
            "SELECT value FROM metrics_gauge WHERE metric_name = 'system.cpu.utilization'",
            "SELECT g.value, s.value FROM metrics_gauge g JOIN metrics_sum s ON g.time = s.time",
            "DESCRIBE metrics_exp_histogram",
            "SHOW CREATE TABLE metrics_summary",
        ] {
            let result = engine.sql(sql).await;
            assert!(result.is_ok(), "{sql}: {:?}", result.err());
        }
    }
}
