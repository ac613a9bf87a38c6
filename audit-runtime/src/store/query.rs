//! The query model every store answers, and its translation to SQL.

use std::fmt;

use audit_catalog::Level;

use super::StoreError;
use super::columns::column_text;
use crate::record::{OutcomeKind, Record};
use crate::time::Timestamp;

/// Newest or oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Newest first (the default).
    #[default]
    NewestFirst,
    /// Oldest first.
    OldestFirst,
}

/// Where the next page starts: an opaque string to hand back with [`Query::after`].
///
/// ```
/// use audit_runtime::store::Cursor;
/// let c: Cursor = "c1-0000018c0a1b2c3d-0000000000000007".parse().unwrap();
/// assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
/// assert!("c1-zz".parse::<Cursor>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub(crate) time_ns: i64,
    pub(crate) seq: i64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "c1-{:016x}-{:016x}",
            self.time_ns as u64, self.seq as u64
        )
    }
}

impl std::str::FromStr for Cursor {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        let invalid = || StoreError::InvalidCursor(s.to_string());
        let rest = s.strip_prefix("c1-").ok_or_else(invalid)?;
        let (time, seq) = rest.split_once('-').ok_or_else(invalid)?;
        if time.len() != 16 || seq.len() != 16 {
            return Err(invalid());
        }
        let time_ns = u64::from_str_radix(time, 16).map_err(|_| invalid())? as i64;
        let seq = u64::from_str_radix(seq, 16).map_err(|_| invalid())? as i64;
        Ok(Cursor { time_ns, seq })
    }
}

/// One page of records, and the cursor of the next page if there may be one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The records, in the query's order.
    pub records: Vec<Record>,
    /// Pass to [`Query::after`] for the next page; `None` on the last page.
    pub next: Option<Cursor>,
}

/// What to read from a store.
///
/// A query is either scoped to one tenant ([`Query::for_tenant`]: it can never return
/// another tenant's rows, whatever else is set) or unscoped ([`Query::all`], for
/// operators). Filters of the same kind are alternatives (`events(["a", "b"])` is
/// a or b); filters of different kinds all apply.
///
/// ```
/// use audit_runtime::store::{Order, Query};
/// use audit_runtime::{Level, OutcomeKind, Timestamp};
/// let q = Query::for_tenant("acme")
///     .since(Timestamp::from_nanos(0))
///     .events(["app_destroy", "app_launch"])
///     .actor("jane@example.com")
///     .entity("app", Some("42"))
///     .outcome(OutcomeKind::Failure)
///     .levels([Level::Warn, Level::Error])
///     .text("dashboard")
///     .order(Order::OldestFirst)
///     .limit(20);
/// assert_eq!(q.tenant(), Some("acme"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    tenant: Option<String>,
    pub(crate) since: Option<Timestamp>,
    pub(crate) until: Option<Timestamp>,
    pub(crate) events: Vec<String>,
    pub(crate) categories: Vec<String>,
    pub(crate) codes: Vec<u32>,
    pub(crate) actor: Option<String>,
    pub(crate) entity: Option<(String, Option<String>)>,
    pub(crate) outcome: Option<OutcomeKind>,
    pub(crate) levels: Vec<Level>,
    pub(crate) text: Option<String>,
    pub(crate) fields: Vec<(String, FieldValue)>,
    pub(crate) operation: Option<uuid::Uuid>,
    pub(crate) order: Order,
    pub(crate) limit: usize,
    pub(crate) after: Option<Cursor>,
}

/// How long after its operation id's time the records of one bulk call are looked
/// for ([`Query::operation`]): they are stamped as the call ends, one after the
/// other.
pub const OPERATION_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

/// The page size when none is set.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest page a query returns.
pub const MAX_LIMIT: usize = 10_000;

impl Query {
    fn new(tenant: Option<String>) -> Self {
        Query {
            tenant,
            since: None,
            until: None,
            events: Vec::new(),
            categories: Vec::new(),
            codes: Vec::new(),
            actor: None,
            entity: None,
            outcome: None,
            levels: Vec::new(),
            text: None,
            fields: Vec::new(),
            operation: None,
            order: Order::NewestFirst,
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }

    /// Records of every tenant (and of none): for operators.
    pub fn all() -> Self {
        Query::new(None)
    }

    /// Only the records of `tenant`; no other setting widens this.
    pub fn for_tenant(tenant: impl Into<String>) -> Self {
        Query::new(Some(tenant.into()))
    }

    /// This query limited to `tenant` (what a [`super::TenantView`] runs).
    pub(crate) fn scoped(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.to_owned());
        self
    }

    /// The tenant this query is scoped to.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// At or after `t`.
    pub fn since(mut self, t: Timestamp) -> Self {
        self.since = Some(t);
        self
    }

    /// Before `t`.
    pub fn until(mut self, t: Timestamp) -> Self {
        self.until = Some(t);
        self
    }

    /// One of these event names.
    pub fn events<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.events.extend(names.into_iter().map(Into::into));
        self
    }

    /// One of these categories.
    pub fn categories<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.categories.extend(names.into_iter().map(Into::into));
        self
    }

    /// One of these event codes.
    pub fn codes<I: IntoIterator<Item = u32>>(mut self, codes: I) -> Self {
        self.codes.extend(codes);
        self
    }

    /// Done by this actor: its id or its email.
    pub fn actor(mut self, id_or_email: impl Into<String>) -> Self {
        self.actor = Some(id_or_email.into());
        self
    }

    /// About entities of this type of any id: `entity(kind, None)` without the
    /// turbofish `None::<&str>` would need.
    ///
    /// ```
    /// use audit_runtime::store::Query;
    /// assert_eq!(Query::all().entity_type("project"), Query::all().entity("project", None::<&str>));
    /// ```
    pub fn entity_type(self, kind: impl Into<String>) -> Self {
        self.entity(kind, None::<String>)
    }

    /// About entities of this type (and this id, if given; numeric ids as digits).
    pub fn entity(mut self, kind: impl Into<String>, id: Option<impl Into<String>>) -> Self {
        self.entity = Some((kind.into(), id.map(Into::into)));
        self
    }

    /// Whose metadata field `name` equals `value` (the field should be declared
    /// `indexed = true` in the catalog, so that stores keep an index on it; without
    /// one the filter is still right, only slower). A name that is not a catalog
    /// field name (`snake_case`) matches nothing. A text value that reads as an
    /// integer also matches that integer (the CLI's `--field id=7`).
    ///
    /// ```
    /// use audit_runtime::store::Query;
    /// let q = Query::for_tenant("acme").field("project_id", 7).field("role", "editor");
    /// # let _ = q;
    /// ```
    pub fn field(mut self, name: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        self.fields.push((name.into(), value.into()));
        self
    }

    /// The records of one bulk call (their `operation.id`, see
    /// [`crate::record::Operation`]). Read through the time index: an operation's
    /// records are stamped within [`OPERATION_WINDOW`] after the time its UUIDv7
    /// encodes.
    ///
    /// ```
    /// use audit_runtime::store::Query;
    /// let q = Query::all().operation(uuid::Uuid::now_v7());
    /// # let _ = q;
    /// ```
    pub fn operation(mut self, id: uuid::Uuid) -> Self {
        self.operation = Some(id);
        self
    }

    /// With this outcome.
    pub fn outcome(mut self, outcome: OutcomeKind) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// At one of these levels.
    pub fn levels<I: IntoIterator<Item = Level>>(mut self, levels: I) -> Self {
        self.levels.extend(levels);
        self
    }

    /// Whose description contains `text` (ASCII case-insensitive; `%` and `_` are
    /// plain characters).
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Newest or oldest first.
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// At most `n` records per page (1 to 10 000; default 50).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n.clamp(1, MAX_LIMIT);
        self
    }

    /// The page after the one that returned `cursor`.
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.after = Some(cursor);
        self
    }
}

/// A parameter of a generated statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
}

/// How a database writes its `n`th parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placeholder {
    /// `?1`, `?2` (SQLite).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Question,
    /// `$1`, `$2` (PostgreSQL).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Dollar,
}

/// A metadata value [`Query::field`] compares with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// A string (also matching the integer it spells, if any).
    Text(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

impl From<&str> for FieldValue {
    fn from(s: &str) -> Self {
        FieldValue::Text(s.to_owned())
    }
}

impl From<String> for FieldValue {
    fn from(s: String) -> Self {
        FieldValue::Text(s)
    }
}

impl From<bool> for FieldValue {
    fn from(b: bool) -> Self {
        FieldValue::Bool(b)
    }
}

macro_rules! field_value_int {
    ($($t:ty),*) => {$(
        impl From<$t> for FieldValue {
            fn from(n: $t) -> Self {
                FieldValue::Int(i64::from(n))
            }
        }
    )*};
}
field_value_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for FieldValue {
    /// Values past `i64::MAX` are compared as text.
    fn from(n: u64) -> Self {
        i64::try_from(n).map_or_else(|_| FieldValue::Text(n.to_string()), FieldValue::Int)
    }
}

/// Whether `name` may be spliced into SQL as a JSON key (catalog field names are
/// `snake_case`).
pub(crate) fn is_field_name(name: &str) -> bool {
    name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The SQL expression of metadata field `name` (a checked [`is_field_name`]), the
/// same text in queries and in the field's index so that the planner matches them.
pub(crate) fn field_expr(style: Placeholder, name: &str) -> String {
    match style {
        // `nullif`: a record SQLite's `audit_record` cannot decode reads as '',
        // which `json_extract` would refuse; such a row matches no filter.
        Placeholder::Question => {
            format!("json_extract(nullif(audit_record(record), ''), '$.metadata.{name}')")
        }
        Placeholder::Dollar => format!("(record->'metadata'->>'{name}')"),
    }
}

/// The metadata fields a store keeps indexes on: those asked for and those the
/// catalogs of this binary's events mark `indexed = true`, each a valid name.
pub(crate) fn indexed_field_names(asked: &[String]) -> impl Iterator<Item = &str> {
    asked
        .iter()
        .map(String::as_str)
        .chain(crate::registry::indexed_fields())
        .filter(|n| is_field_name(n))
}

/// The name of the index of metadata field `name` on `table` (`audit_records` or
/// one of SQLite's segment tables).
pub(crate) fn field_index_name(table: &str, name: &str) -> String {
    match table {
        "audit_records" => format!("audit_field_{name}"),
        _ => format!("{table}_field_{name}"),
    }
}

/// `CREATE INDEX` for metadata field `name` on `table`: its value then the page
/// order (time, then `seq`: explicit on PostgreSQL, the rowid on SQLite), only over
/// the records that have it.
pub(crate) fn field_index_sql(style: Placeholder, table: &str, name: &str) -> String {
    let expr = field_expr(style, name);
    let order = match style {
        Placeholder::Question => "time_ns",
        Placeholder::Dollar => "time_ns, seq",
    };
    let index = field_index_name(table, name);
    format!(
        "CREATE INDEX IF NOT EXISTS {index} ON {table} ({expr}, {order}) \
         WHERE {expr} IS NOT NULL"
    )
}

/// A query as SQL over the store table's columns: one or more `WHERE …` arms (a row
/// matches one arm at most), each ordered and limited, and the order and limit of
/// their union. A page reads one more row than it shows, to know whether another
/// page follows.
#[derive(Debug)]
pub(crate) struct Sql {
    arms: Vec<String>,
    /// For a query filtering on the actor: its `WHERE` as one arm (the id or the
    /// email), for a table without the indexes of those columns.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    one_arm: Option<String>,
    /// The whole `WHERE` as one condition (the actor's two columns joined by
    /// `OR`), for rows read by position.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub filter: String,
    order_limit: String,
    pub params: Vec<Param>,
}

impl Sql {
    /// The statement selecting `columns` of the matching rows of `table`;
    /// `columns` must name `time_ns` and `seq` (the order). `keyed`: whether the
    /// table has every query index. Without them (an open SQLite segment), a page
    /// filtered on a random key is served by walking the segment's tail index
    /// (time, then the keys) in order and testing the keys in it; an actor's is
    /// one arm there, as two would walk it twice.
    #[cfg(feature = "sqlite")]
    pub(crate) fn statement_over(&self, table: &str, columns: &str, keyed: bool) -> String {
        match (&self.one_arm, keyed) {
            (Some(arm), false) => {
                format!("SELECT {columns} FROM {table} {arm} {}", self.order_limit)
            }
            _ => self.statement(table, columns),
        }
    }

    /// The statement selecting `columns` of the matching rows of `table`, which
    /// has every query index; `columns` must name `time_ns` and `seq` (the order).
    pub(crate) fn statement(&self, table: &str, columns: &str) -> String {
        match self.arms.as_slice() {
            [one] => format!("SELECT {columns} FROM {table} {one} {}", self.order_limit),
            // Each arm walks its own index in order and stops at the limit; the
            // union of a few pages is ordered again. An `OR` of the two would read
            // every matching row to sort them.
            arms => {
                let selects: Vec<String> = arms
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        format!(
                            "SELECT * FROM (SELECT {columns} FROM {table} {w} {}) AS arm{i}",
                            self.order_limit
                        )
                    })
                    .collect();
                format!("{} {}", selects.join(" UNION ALL "), self.order_limit)
            }
        }
    }
}

struct Builder {
    style: Placeholder,
    conds: Vec<String>,
    params: Vec<Param>,
}

impl Builder {
    fn param(&mut self, p: Param) -> String {
        self.params.push(p);
        match self.style {
            Placeholder::Question => format!("?{}", self.params.len()),
            Placeholder::Dollar => format!("${}", self.params.len()),
        }
    }

    /// `WHERE` with every condition, and `extra` if not empty.
    fn where_with(&self, extra: &str) -> String {
        let mut conds: Vec<&str> = self.conds.iter().map(String::as_str).collect();
        if !extra.is_empty() {
            conds.push(extra);
        }
        format!("WHERE {}", conds.join(" AND "))
    }

    /// `WHERE` with `first`, then every condition: SQLite tests them in this
    /// order, and a rare key rejects an entry soonest.
    fn where_leading(&self, first: &str) -> String {
        let conds: Vec<&str> = std::iter::once(first)
            .chain(self.conds.iter().map(String::as_str))
            .collect();
        format!("WHERE {}", conds.join(" AND "))
    }

    fn any_of(&mut self, column: &str, values: Vec<Param>) {
        match values.len() {
            0 => {}
            1 => {
                let p = self.param(values.into_iter().next().expect("one value"));
                self.conds.push(format!("{column} = {p}"));
            }
            _ => {
                let list: Vec<String> = values.into_iter().map(|v| self.param(v)).collect();
                self.conds
                    .push(format!("{column} IN ({})", list.join(", ")));
            }
        }
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Query {
    /// The SQL of this query's page. `like` is the database's case-insensitive LIKE.
    pub(crate) fn to_sql(&self, style: Placeholder, like: &str) -> Sql {
        let mut b = self.filters(style, like);
        let (cmp, dir) = match self.order {
            Order::NewestFirst => ("<", "DESC"),
            Order::OldestFirst => (">", "ASC"),
        };
        if let Some(c) = self.after {
            let t = b.param(Param::Int(c.time_ns));
            let s = b.param(Param::Int(c.seq));
            b.conds.push(format!("(time_ns, seq) {cmp} ({t}, {s})"));
        }
        let (arms, one_arm) = match &self.actor {
            // The actor is an id or an email: one arm per column, each served by
            // its `(column, time_ns)` index in order; the email arm leaves out the
            // rows the id arm has.
            Some(actor) => {
                let p = b.param(Param::Text(column_text(actor, true).into_owned()));
                let arms = vec![
                    b.where_with(&format!("actor_id = {p}")),
                    b.where_with(&format!(
                        "actor_email = {p} AND (actor_id IS NULL OR actor_id <> {p})"
                    )),
                ];
                let one = b.where_leading(&format!("(actor_id = {p} OR actor_email = {p})"));
                (arms, Some(one))
            }
            None => (vec![b.where_with("")], None),
        };
        Sql {
            filter: one_arm.clone().unwrap_or_else(|| arms[0].clone()),
            arms,
            one_arm,
            order_limit: format!("ORDER BY time_ns {dir}, seq {dir} LIMIT {}", self.limit + 1),
            params: b.params,
        }
    }

    /// The times a row of this query's page can have, both ends included: its
    /// time filters, narrowed by the cursor (a store split by position skips the
    /// parts whose rows all lie outside).
    #[cfg(feature = "sqlite")]
    pub(crate) fn time_window(&self) -> (i64, i64) {
        let mut lo = self.since.map_or(i64::MIN, Timestamp::as_nanos);
        let mut hi = self
            .until
            .map_or(i64::MAX, |t| t.as_nanos().saturating_sub(1));
        if let Some(c) = self.after {
            match self.order {
                Order::NewestFirst => hi = hi.min(c.time_ns),
                Order::OldestFirst => lo = lo.max(c.time_ns),
            }
        }
        (lo, hi)
    }

    /// The SQL of [`super::Store::follow_matching`]: this query's filters over the
    /// rows after position `after`, in insertion order, `limit` of them at most
    /// (order and cursor do not apply).
    pub(crate) fn to_follow_sql(&self, style: Placeholder, like: &str, after: i64) -> Sql {
        let mut b = self.filters(style, like);
        if let Some(actor) = &self.actor {
            let p = b.param(Param::Text(column_text(actor, true).into_owned()));
            b.conds
                .push(format!("(actor_id = {p} OR actor_email = {p})"));
        }
        let p = b.param(Param::Int(after));
        b.conds.push(format!("seq > {p}"));
        Sql {
            filter: b.where_with(""),
            arms: vec![b.where_with("")],
            // Read in position order either way.
            one_arm: None,
            order_limit: format!("ORDER BY seq LIMIT {}", self.limit),
            params: b.params,
        }
    }

    /// The conditions of every filter but the actor's, erased rows excluded.
    fn filters(&self, style: Placeholder, like: &str) -> Builder {
        let mut b = Builder {
            style,
            conds: Vec::new(),
            params: Vec::new(),
        };
        // Values pass through the rule the columns were written with.
        let indexed = |v: &str| Param::Text(column_text(v, true).into_owned());
        let text = |v: &String| indexed(v);
        // The entity first: a walk of a segment without its index tests the
        // conditions in this order, and the id is the rarest value.
        if let Some((kind, id)) = &self.entity {
            if let Some(id) = id {
                let p = b.param(indexed(id));
                b.conds.push(format!("entity_id = {p}"));
            }
            let p = b.param(indexed(kind));
            b.conds.push(format!("entity_type = {p}"));
        }
        if let Some(t) = &self.tenant {
            let p = b.param(indexed(t));
            b.conds.push(format!("tenant = {p}"));
        }
        if let Some(t) = self.since {
            let p = b.param(Param::Int(t.as_nanos()));
            b.conds.push(format!("time_ns >= {p}"));
        }
        if let Some(t) = self.until {
            let p = b.param(Param::Int(t.as_nanos()));
            b.conds.push(format!("time_ns < {p}"));
        }
        b.any_of("event", self.events.iter().map(text).collect());
        b.any_of("category", self.categories.iter().map(text).collect());
        b.any_of(
            "code",
            self.codes
                .iter()
                .map(|c| Param::Int(i64::from(*c)))
                .collect(),
        );
        b.any_of(
            "level",
            self.levels
                .iter()
                .map(|l| Param::Text(l.as_str().into()))
                .collect(),
        );
        if let Some(o) = self.outcome {
            let p = b.param(Param::Text(outcome_str(o).into()));
            b.conds.push(format!("outcome = {p}"));
        }
        if let Some(t) = &self.text {
            let p = b.param(Param::Text(like_pattern(&column_text(t, false))));
            b.conds.push(format!("description {like} {p} ESCAPE '\\'"));
        }
        for (name, value) in &self.fields {
            if !is_field_name(name) {
                b.conds.push("1 = 0".into());
                continue;
            }
            let expr = field_expr(style, name);
            // SQLite's json_extract gives numbers as integers and booleans as 1 / 0;
            // PostgreSQL's ->> gives text.
            let values = match (style, value) {
                (Placeholder::Dollar, FieldValue::Text(t)) => vec![Param::Text(t.clone())],
                (Placeholder::Dollar, FieldValue::Int(n)) => vec![Param::Text(n.to_string())],
                (Placeholder::Dollar, FieldValue::Bool(v)) => vec![Param::Text(v.to_string())],
                (Placeholder::Question, FieldValue::Text(t)) => {
                    let mut v = vec![Param::Text(t.clone())];
                    if let Ok(n) = t.parse::<i64>() {
                        v.push(Param::Int(n));
                    }
                    v
                }
                (Placeholder::Question, FieldValue::Int(n)) => vec![Param::Int(*n)],
                (Placeholder::Question, FieldValue::Bool(v)) => vec![Param::Int(i64::from(*v))],
            };
            b.any_of(&expr, values);
        }
        if let Some(id) = self.operation {
            // The id's millisecond time bounds the rows (a second of slack for a
            // clock stepped back), then the JSON names it.
            let ms = id
                .get_timestamp()
                .map(|t| t.to_unix())
                .map_or(0, |(s, ns)| s as i64 * 1000 + i64::from(ns / 1_000_000));
            let from = (ms - 1000).saturating_mul(1_000_000);
            let to = from.saturating_add(OPERATION_WINDOW.as_nanos() as i64 + 2_000_000_000);
            let (p, q) = (b.param(Param::Int(from)), b.param(Param::Int(to)));
            b.conds.push(format!("time_ns >= {p} AND time_ns < {q}"));
            let expr = match style {
                Placeholder::Question => {
                    "json_extract(nullif(audit_record(record), ''), '$.operation.id')"
                }
                Placeholder::Dollar => "(record->'operation'->>'id')",
            };
            let p = b.param(Param::Text(id.hyphenated().to_string()));
            b.conds.push(format!("{expr} = {p}"));
        }
        // Rows erased by a tenant purge hold no record: no read returns them.
        b.conds.push("erased_ns IS NULL".into());
        b
    }
}

/// The stored spelling of an outcome.
pub(crate) fn outcome_str(o: OutcomeKind) -> &'static str {
    match o {
        OutcomeKind::Success => "success",
        OutcomeKind::Failure => "failure",
    }
}

/// Turns rows fetched with [`Query::to_sql`] (`limit + 1` of them at most, each with
/// its `(time_ns, seq)`) into a page.
pub(crate) fn page_of(query: &Query, mut rows: Vec<(i64, i64, Record)>) -> Page {
    let more = rows.len() > query.limit;
    rows.truncate(query.limit);
    let next = if more {
        rows.last().map(|(time_ns, seq, _)| Cursor {
            time_ns: *time_ns,
            seq: *seq,
        })
    } else {
        None
    };
    Page {
        records: rows.into_iter().map(|(_, _, r)| r).collect(),
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }

    #[test]
    fn tenant_scope_comes_first_and_stays() {
        let q = Query::for_tenant("acme").actor("x' OR 1=1 --");
        let sql = q.to_sql(Placeholder::Question, "LIKE");
        let text = sql.statement("audit_records", "time_ns, seq");
        assert_eq!(sql.params[0], Param::Text("acme".into()));
        assert_eq!(
            sql.params.len(),
            2,
            "the actor is one parameter, used thrice"
        );
        assert!(!text.contains("OR 1=1"));
        // Both arms keep the tenant scope.
        assert_eq!(text.matches("WHERE tenant = ?1 AND").count(), 2, "{text}");
    }

    #[test]
    fn dollar_placeholders_and_cursor() {
        let q = Query::all()
            .events(["a", "b"])
            .order(Order::OldestFirst)
            .after(Cursor { time_ns: 5, seq: 9 });
        let sql = q.to_sql(Placeholder::Dollar, "ILIKE");
        assert_eq!(
            sql.statement("audit_records", "seq, time_ns"),
            "SELECT seq, time_ns FROM audit_records \
             WHERE event IN ($1, $2) AND erased_ns IS NULL AND (time_ns, seq) > ($3, $4) \
             ORDER BY time_ns ASC, seq ASC LIMIT 51"
        );
    }

    #[test]
    fn an_actor_is_a_union_of_two_ordered_arms() {
        let sql = Query::all()
            .actor("jane")
            .limit(10)
            .to_sql(Placeholder::Dollar, "ILIKE");
        assert_eq!(
            sql.statement("audit_records", "time_ns, seq"),
            "SELECT * FROM (SELECT time_ns, seq FROM audit_records \
             WHERE erased_ns IS NULL AND actor_id = $1 \
             ORDER BY time_ns DESC, seq DESC LIMIT 11) AS arm0 UNION ALL \
             SELECT * FROM (SELECT time_ns, seq FROM audit_records \
             WHERE erased_ns IS NULL AND actor_email = $1 AND (actor_id IS NULL OR actor_id <> $1) \
             ORDER BY time_ns DESC, seq DESC LIMIT 11) AS arm1 \
             ORDER BY time_ns DESC, seq DESC LIMIT 11"
        );
    }

    /// A table without the random-key indexes is read in one arm for an actor, the
    /// key tested first; an entity's conditions lead too; other queries read it as
    /// any table.
    #[cfg(feature = "sqlite")]
    #[test]
    fn keys_without_their_index_are_one_arm() {
        let over = |q: Query, keyed: bool| {
            q.limit(10)
                .to_sql(Placeholder::Question, "LIKE")
                .statement_over("s", "seq", keyed)
        };
        let actor = Query::for_tenant("acme").actor("jane");
        assert_eq!(
            over(actor.clone(), false),
            "SELECT seq FROM s \
             WHERE (actor_id = ?2 OR actor_email = ?2) AND tenant = ?1 AND erased_ns IS NULL \
             ORDER BY time_ns DESC, seq DESC LIMIT 11"
        );
        assert!(over(actor, true).contains(" UNION ALL "));
        assert_eq!(
            over(Query::all().entity("app", Some("a-1")), false),
            "SELECT seq FROM s \
             WHERE entity_id = ?1 AND entity_type = ?2 AND erased_ns IS NULL \
             ORDER BY time_ns DESC, seq DESC LIMIT 11"
        );
        let entity = Query::all().entity("app", Some("a-1"));
        assert_eq!(
            over(entity.clone(), true),
            entity
                .limit(10)
                .to_sql(Placeholder::Question, "LIKE")
                .statement("s", "seq")
        );
        let event = Query::all().events(["app_add"]);
        assert_eq!(over(event.clone(), false), over(event, true));
    }
}
