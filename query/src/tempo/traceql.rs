//! The TraceQL subset Grafana's search builder emits: one spanset filter
//! `{ cond && cond && ... }` whose conditions compare an intrinsic (`name`,
//! `status`, `kind`, `statusMessage`, `duration`) or a span, resource or
//! unscoped attribute with a literal (`=~` / `!~` regular expressions on
//! strings, fully anchored: what Grafana's multi-value selections emit). A
//! tokenizer and a recursive-descent parser; everything else TraceQL has (`||`, pipelines,
//! structural operators, several spansets...) is refused with a message
//! naming the construct, so a query is answered exactly or not at all.

use std::fmt;

/// A parsed query: the spans matching every condition (none: every span).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpanFilter {
    pub(crate) conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    pub(crate) field: Field,
    pub(crate) op: Op,
    pub(crate) value: Literal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    Name,
    Status,
    StatusMessage,
    Kind,
    Duration,
    Attribute { scope: Scope, key: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Span,
    Resource,
    /// `.key`: the span's attribute if it has one, else the resource's.
    Unscoped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// `=~`: the whole string matches the pattern.
    Match,
    /// `!~`: the string does not match the pattern as a whole.
    NotMatch,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Nanoseconds.
    Duration(i64),
    /// `error`, `ok`, `unset`.
    Status(&'static str),
    /// `server`, `client`, ... as stored in the `kind` column.
    Kind(&'static str),
}

/// Why a query was refused: a syntax error or a construct outside the subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TraceQlError(pub(crate) String);

impl fmt::Display for TraceQlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn unsupported(what: &str) -> TraceQlError {
    TraceQlError(format!(
        "unsupported TraceQL: {what}; Skein supports one spanset filter {{ ... }} of conditions joined by && \
         (see docs/api.md, Tempo API)"
    ))
}

fn syntax(message: String) -> TraceQlError {
    TraceQlError(format!("invalid TraceQL: {message}"))
}

const STATUSES: [&str; 3] = ["error", "ok", "unset"];
const KINDS: [&str; 6] = ["unspecified", "internal", "server", "client", "producer", "consumer"];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    And,
    Op(Op),
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Duration(i64),
}

/// Splits `text` into tokens; operators outside the subset fail here.
fn tokenize(text: &str) -> Result<Vec<Token>, TraceQlError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        match c {
            _ if c.is_whitespace() => i += 1,
            '{' | '}' => {
                tokens.push(if c == '{' { Token::Open } else { Token::Close });
                i += 1;
            }
            '"' | '`' => {
                let (value, end) = string_literal(&chars, i)?;
                tokens.push(Token::Str(value));
                i = end;
            }
            _ if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == 'µ') {
                    i += 1;
                }
                tokens.push(number(&chars[start..i].iter().collect::<String>())?);
            }
            _ if c.is_alphabetic() || c == '_' || c == '.' => {
                let start = i;
                i += 1;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                if chars.get(i) == Some(&'"') {
                    return Err(unsupported("quoted attribute names"));
                }
                let ident: String = chars[start..i].iter().collect();
                if chars.get(i) == Some(&'(') {
                    return Err(unsupported(&format!("the function {ident}()")));
                }
                tokens.push(Token::Ident(ident));
            }
            _ => {
                let (token, width) = match two.as_str() {
                    "&&" => (Token::And, 2),
                    "!=" => (Token::Op(Op::Ne), 2),
                    ">=" => (Token::Op(Op::Ge), 2),
                    "<=" => (Token::Op(Op::Le), 2),
                    "||" => return Err(unsupported("the || operator")),
                    "=~" => (Token::Op(Op::Match), 2),
                    "!~" => (Token::Op(Op::NotMatch), 2),
                    ">>" | "<<" | "!>" | "!<" | "&>" | "&<" | "&~" => {
                        return Err(unsupported(&format!("the structural operator {two}")));
                    }
                    _ => match c {
                        '=' => (Token::Op(Op::Eq), 1),
                        '>' => (Token::Op(Op::Gt), 1),
                        '<' => (Token::Op(Op::Lt), 1),
                        '|' => return Err(unsupported("pipelines (|)")),
                        '~' => return Err(unsupported("the sibling operator ~")),
                        '(' | ')' => return Err(unsupported("parentheses")),
                        '!' => return Err(unsupported("negation (!)")),
                        '+' | '-' | '*' | '/' | '%' | '^' => {
                            return Err(unsupported(&format!("arithmetic ({c})")));
                        }
                        '&' => return Err(unsupported("the structural operator &")),
                        _ => return Err(syntax(format!("unexpected character {c:?}"))),
                    },
                };
                tokens.push(token);
                i += width;
            }
        }
    }
    Ok(tokens)
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '/')
}

/// A `"..."` string (backslash escapes) or a raw `` `...` `` string starting at `start`.
fn string_literal(chars: &[char], start: usize) -> Result<(String, usize), TraceQlError> {
    let quote = chars[start];
    let mut value = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            c if c == quote => return Ok((value, i + 1)),
            '\\' if quote == '"' => {
                let escaped = chars.get(i + 1).ok_or_else(|| syntax("unterminated string".into()))?;
                value.push(super::unescape(*escaped));
                i += 2;
            }
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
    Err(syntax("unterminated string".into()))
}

/// An integer, a float, or a duration (`100ms`, `1.5s`, `1h30m`).
fn number(text: &str) -> Result<Token, TraceQlError> {
    if let Ok(n) = text.parse::<i64>() {
        return Ok(Token::Int(n));
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'e' || b == b'E')
        && let Ok(f) = text.parse::<f64>()
    {
        return Ok(Token::Float(f));
    }
    parse_go_duration(text).map(Token::Duration).ok_or_else(|| syntax(format!("{text:?} is not a number or duration")))
}

/// A Go duration (`300ms`, `1.5s`, `2h45m`; units ns, us, µs, ms, s, m, h)
/// in nanoseconds; `None` if malformed, negative or out of range.
pub(crate) fn parse_go_duration(text: &str) -> Option<i64> {
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut total: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * scale;
        rest = tail;
    }
    (total.is_finite() && total < i64::MAX as f64).then(|| total.round() as i64)
}

/// Parses a query of the subset (see the module doc).
pub(crate) fn parse(text: &str) -> Result<SpanFilter, TraceQlError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser { tokens, at: 0 };
    let filter = parser.spanset()?;
    match parser.peek() {
        None => Ok(filter),
        Some(Token::And) => Err(unsupported("combining spansets ({ } && { })")),
        Some(Token::Open) => Err(unsupported("more than one spanset")),
        Some(other) => Err(syntax(format!("unexpected {} after the spanset", describe(other)))),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn spanset(&mut self) -> Result<SpanFilter, TraceQlError> {
        match self.next() {
            Some(Token::Open) => {}
            Some(other) => return Err(syntax(format!("a query starts with {{, not {}", describe(&other)))),
            None => return Err(syntax("the query is empty; use {} for every span".into())),
        }
        let mut conditions = Vec::new();
        if self.peek() == Some(&Token::Close) {
            self.next();
            return Ok(SpanFilter { conditions });
        }
        loop {
            conditions.push(self.condition()?);
            match self.next() {
                Some(Token::And) => continue,
                Some(Token::Close) => return Ok(SpanFilter { conditions }),
                Some(other) => return Err(syntax(format!("expected && or }} but found {}", describe(&other)))),
                None => return Err(syntax("missing } at the end".into())),
            }
        }
    }

    fn condition(&mut self) -> Result<Condition, TraceQlError> {
        let field = match self.next() {
            Some(Token::Ident(name)) => field(&name)?,
            Some(other) => return Err(syntax(format!("expected a field but found {}", describe(&other)))),
            None => return Err(syntax("missing a condition before the end".into())),
        };
        let op = match self.next() {
            Some(Token::Op(op)) => op,
            Some(Token::And | Token::Close) | None => {
                return Err(unsupported("a field without a comparison (existence or boolean tests)"));
            }
            Some(other) => return Err(syntax(format!("expected an operator but found {}", describe(&other)))),
        };
        let value = match self.next() {
            Some(token) => literal(&field, token)?,
            None => return Err(syntax("missing a value after the operator".into())),
        };
        check_types(&field, op, &value)?;
        Ok(Condition { field, op, value })
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Open => "{".into(),
        Token::Close => "}".into(),
        Token::And => "&&".into(),
        Token::Op(op) => format!("the operator {}", op_text(*op)),
        Token::Ident(name) => format!("{name:?}"),
        Token::Str(value) => format!("the string {value:?}"),
        Token::Int(n) => format!("the number {n}"),
        Token::Float(f) => format!("the number {f}"),
        Token::Duration(_) => "a duration".into(),
    }
}

pub(crate) fn op_text(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Match => "=~",
        Op::NotMatch => "!~",
    }
}

/// A `=~` / `!~` pattern as matched: anchored at both ends.
pub(crate) fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// The field an identifier names: intrinsics (also as `span:name`...) or attributes.
fn field(name: &str) -> Result<Field, TraceQlError> {
    let field = match name {
        "name" | "span:name" => Field::Name,
        "status" | "span:status" => Field::Status,
        "statusMessage" | "span:statusMessage" => Field::StatusMessage,
        "kind" | "span:kind" => Field::Kind,
        "duration" | "span:duration" => Field::Duration,
        _ => {
            let (scope, key) = if let Some(key) = name.strip_prefix("span.") {
                (Scope::Span, key)
            } else if let Some(key) = name.strip_prefix("resource.") {
                (Scope::Resource, key)
            } else if let Some(key) = name.strip_prefix('.') {
                (Scope::Unscoped, key)
            } else {
                return Err(unknown_field(name));
            };
            if key.is_empty() {
                return Err(syntax(format!("{name:?} names no attribute")));
            }
            Field::Attribute { scope, key: key.to_owned() }
        }
    };
    Ok(field)
}

fn unknown_field(name: &str) -> TraceQlError {
    let scope = name.split(['.', ':']).next().unwrap_or(name);
    match scope {
        "event" | "link" | "instrumentation" | "scope" => {
            unsupported(&format!("{scope} fields ({name}); only span and resource attributes are searchable"))
        }
        "trace" | "rootName" | "rootServiceName" | "traceDuration" | "nestedSetLeft" | "nestedSetRight"
        | "nestedSetParent" | "parent" | "childCount" => unsupported(&format!("the trace-level field {name}")),
        "span" => unsupported(&format!("the intrinsic {name}")),
        _ if STATUSES.contains(&name) || KINDS.contains(&name) || name == "true" || name == "false" => {
            syntax(format!("{name} is a value, not a field"))
        }
        _ => syntax(format!(
            "unknown field {name:?}; use span.<attr>, resource.<attr>, .<attr>, name, status, kind, statusMessage or duration"
        )),
    }
}

/// A value token as a literal; bare words are enum values or booleans.
fn literal(field: &Field, token: Token) -> Result<Literal, TraceQlError> {
    Ok(match token {
        Token::Str(s) => Literal::Str(s),
        Token::Int(n) => Literal::Int(n),
        Token::Float(f) => Literal::Float(f),
        Token::Duration(ns) => Literal::Duration(ns),
        Token::Ident(word) => match word.as_str() {
            "true" => Literal::Bool(true),
            "false" => Literal::Bool(false),
            "nil" => return Err(unsupported("comparisons with nil")),
            _ => {
                if let Some(status) = STATUSES.iter().find(|s| **s == word) {
                    Literal::Status(status)
                } else if let Some(kind) = KINDS.iter().find(|k| **k == word) {
                    Literal::Kind(kind)
                } else {
                    let hint = match field {
                        Field::Attribute { .. } | Field::Name | Field::StatusMessage => "; quote strings",
                        _ => "",
                    };
                    return Err(syntax(format!("{word:?} is not a value{hint}")));
                }
            }
        },
        other => return Err(syntax(format!("expected a value but found {}", describe(&other)))),
    })
}

/// Refuses comparisons TraceQL would reject or the subset cannot answer exactly.
fn check_types(field: &Field, op: Op, value: &Literal) -> Result<(), TraceQlError> {
    if matches!(op, Op::Match | Op::NotMatch) {
        let Literal::Str(pattern) = value else {
            return Err(syntax(format!("{} needs a string pattern, not {}", op_text(op), literal_kind(value))));
        };
        if !matches!(field, Field::Name | Field::StatusMessage | Field::Attribute { .. }) {
            return Err(unsupported(&format!("the operator {} on {}", op_text(op), field_name(field))));
        }
        regex::Regex::new(&anchored(pattern))
            .map_err(|e| syntax(format!("{pattern:?} is not a valid regular expression: {e}")))?;
        return Ok(());
    }
    let equality = matches!(op, Op::Eq | Op::Ne);
    let ok = match (field, value) {
        (Field::Name | Field::StatusMessage, Literal::Str(_)) => equality,
        (Field::Status, Literal::Status(_)) | (Field::Kind, Literal::Kind(_)) => equality,
        (Field::Duration, Literal::Duration(_)) => true,
        (Field::Attribute { .. }, Literal::Str(_) | Literal::Bool(_)) => equality,
        (Field::Attribute { .. }, Literal::Int(_) | Literal::Float(_)) => true,
        (Field::Attribute { .. }, Literal::Duration(_)) => {
            return Err(unsupported("comparing an attribute with a duration"));
        }
        _ => {
            return Err(syntax(format!("{} cannot be compared with {}", field_name(field), literal_kind(value))));
        }
    };
    if ok { Ok(()) } else { Err(unsupported(&format!("the operator {} on {}", op_text(op), literal_kind(value)))) }
}

pub(crate) fn field_name(field: &Field) -> String {
    match field {
        Field::Name => "name".into(),
        Field::Status => "status".into(),
        Field::StatusMessage => "statusMessage".into(),
        Field::Kind => "kind".into(),
        Field::Duration => "duration".into(),
        Field::Attribute { scope: Scope::Span, key } => format!("span.{key}"),
        Field::Attribute { scope: Scope::Resource, key } => format!("resource.{key}"),
        Field::Attribute { scope: Scope::Unscoped, key } => format!(".{key}"),
    }
}

fn literal_kind(value: &Literal) -> &'static str {
    match value {
        Literal::Str(_) => "a string",
        Literal::Int(_) | Literal::Float(_) => "a number",
        Literal::Bool(_) => "a boolean",
        Literal::Duration(_) => "a duration",
        Literal::Status(_) => "a status",
        Literal::Kind(_) => "a kind",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(scope: Scope, key: &str) -> Field {
        Field::Attribute { scope, key: key.into() }
    }

    fn cond(field: Field, op: Op, value: Literal) -> Condition {
        Condition { field, op, value }
    }

    #[test]
    fn parses_what_the_search_builder_emits() {
        let query = r#"{resource.service.name="checkout" && span.http.route = "/cart" && name="GET /cart" && duration>100ms && duration<=1.5s && status=error}"#;
        assert_eq!(
            parse(query).expect("parses").conditions,
            vec![
                cond(attr(Scope::Resource, "service.name"), Op::Eq, Literal::Str("checkout".into())),
                cond(attr(Scope::Span, "http.route"), Op::Eq, Literal::Str("/cart".into())),
                cond(Field::Name, Op::Eq, Literal::Str("GET /cart".into())),
                cond(Field::Duration, Op::Gt, Literal::Duration(100_000_000)),
                cond(Field::Duration, Op::Le, Literal::Duration(1_500_000_000)),
                cond(Field::Status, Op::Eq, Literal::Status("error")),
            ]
        );
    }

    #[test]
    fn parses_the_rest_of_the_subset() {
        assert!(parse("{}").expect("all").conditions.is_empty());
        assert!(parse("  { }  ").expect("all").conditions.is_empty());
        let query = r#"{ .http.status_code >= 500 && span.retry = true && kind = server && statusMessage != "ok" && span:name = `a"b` && .ratio < 0.5 && span.x != -3 }"#;
        assert_eq!(
            parse(query).expect("parses").conditions,
            vec![
                cond(attr(Scope::Unscoped, "http.status_code"), Op::Ge, Literal::Int(500)),
                cond(attr(Scope::Span, "retry"), Op::Eq, Literal::Bool(true)),
                cond(Field::Kind, Op::Eq, Literal::Kind("server")),
                cond(Field::StatusMessage, Op::Ne, Literal::Str("ok".into())),
                cond(Field::Name, Op::Eq, Literal::Str("a\"b".into())),
                cond(attr(Scope::Unscoped, "ratio"), Op::Lt, Literal::Float(0.5)),
                cond(attr(Scope::Span, "x"), Op::Ne, Literal::Int(-3)),
            ]
        );
        let escaped = parse(r#"{ name = "say \"hi\"\\" }"#).expect("escapes");
        assert_eq!(escaped.conditions[0].value, Literal::Str("say \"hi\"\\".into()));
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("100ms"), Some(100_000_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("250us"), Some(250_000));
        assert_eq!(parse_go_duration("250µs"), Some(250_000));
        assert_eq!(parse_go_duration("7ns"), Some(7));
        assert_eq!(parse_go_duration("0"), Some(0));
        for bad in ["", "5", "ms", "1.5", "-1s", "1x", "1s2", "1e3s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    /// Every construct outside the subset is refused, naming what it is.
    #[test]
    fn refuses_what_it_cannot_answer() {
        for (query, named) in [
            (r#"{ name = "a" || name = "b" }"#, "||"),
            ("{ status =~ \"err.*\" }", "=~ on status"),
            ("{ status = error } | count() > 2", "pipelines"),
            ("{ kind = server } >> { kind = client }", "structural"),
            ("{ kind = server } ~ { kind = client }", "sibling"),
            ("{ kind = server } && { kind = client }", "combining spansets"),
            ("{ kind = server } { kind = client }", "more than one spanset"),
            ("{ (name = \"a\") }", "parentheses"),
            ("{ !(name = \"a\") }", "negation"),
            ("{ span.a + 1 > 2 }", "arithmetic"),
            ("{ span.a = nil }", "nil"),
            ("{ span.a != nil }", "nil"),
            ("{ span.flag }", "without a comparison"),
            ("{ event.name = \"x\" }", "event fields"),
            ("{ link.traceID = \"x\" }", "link fields"),
            ("{ instrumentation.name = \"x\" }", "instrumentation fields"),
            ("{ trace:duration > 1s }", "trace-level"),
            ("{ rootServiceName = \"x\" }", "trace-level"),
            ("{ traceDuration > 1s }", "trace-level"),
            ("{ span:id = \"x\" }", "intrinsic span:id"),
            ("{ span.\"with space\" = 1 }", "quoted attribute"),
            ("{ name > \"a\" }", "operator >"),
            ("{ span.a > \"a\" }", "operator >"),
            ("{ span.a < true }", "operator <"),
            ("{ status > error }", "operator >"),
            ("{ span.a = 5s }", "duration"),
            ("count_over_time()", "function"),
        ] {
            let err = parse(query).expect_err(query).0;
            assert!(err.starts_with("unsupported TraceQL"), "{query}: {err}");
            assert!(err.contains(named), "{query}: {err}");
        }
    }

    #[test]
    fn refuses_malformed_queries() {
        for query in [
            "",
            "name = \"a\"",
            "{",
            "{ name = \"a\"",
            "{ name = }",
            "{ name }x",
            "{ name = \"a\" && }",
            "{ name = \"unterminated }",
            "{ status = \"error\" }",
            "{ duration > 100 }",
            "{ kind = sever }",
            "{ foo = 1 }",
            "{ span. = 1 }",
            "{ span.a = bare }",
            "{ error = status }",
            "{ name = \"a\" } x",
            "{ name = \"a\" # }",
            "{ duration > 10xs }",
        ] {
            let err = parse(query).expect_err(query).0;
            assert!(err.starts_with("invalid TraceQL") || err.starts_with("unsupported TraceQL"), "{query}: {err}");
        }
    }
}
