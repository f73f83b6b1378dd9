#include <athanor/core/dialect.hpp>
#include <athanor/core/exc.hpp>
#include <athanor/core/schema.hpp>

#include <algorithm>
#include <atomic>
#include <unordered_set>

namespace athanor {

namespace {
// SQLite's keywords (sqlite.org/lang_keywords.html) plus the ANSI words SQLAlchemy reserves.
const std::unordered_set<std::string_view>& reserved_words() {
    static const std::unordered_set<std::string_view> words = {
        "abort", "action", "add", "after", "all", "alter", "always", "analyze", "and", "any",
        "as", "asc", "attach", "autoincrement", "before", "begin", "between", "both", "by",
        "cascade", "case", "cast", "check", "collate", "column", "commit", "conflict",
        "constraint", "create", "cross", "current", "current_date", "current_time",
        "current_timestamp", "database", "default", "deferrable", "deferred", "delete", "desc",
        "detach", "distinct", "do", "drop", "each", "else", "end", "escape", "except",
        "exclude", "exclusive", "exists", "explain", "fail", "false", "filter", "first",
        "following", "for", "foreign", "from", "full", "generated", "glob", "group", "groups",
        "having", "if", "ignore", "immediate", "in", "index", "indexed", "initially", "inner",
        "insert", "instead", "intersect", "into", "is", "isnull", "join", "key", "last",
        "leading", "left", "like", "limit", "match", "materialized", "natural", "no", "not",
        "nothing", "notnull", "null", "nulls", "of", "offset", "on", "only", "or", "order",
        "others", "outer", "over", "partition", "plan", "pragma", "preceding", "primary",
        "query", "raise", "range", "recursive", "references", "regexp", "reindex", "release",
        "rename", "replace", "restrict", "returning", "right", "rollback", "row", "rows",
        "savepoint", "select", "set", "some", "symmetric", "table", "temp", "temporary", "then",
        "ties", "to", "trailing", "transaction", "trigger", "true", "unbounded", "union",
        "unique", "update", "user", "using", "vacuum", "values", "view", "virtual", "when",
        "where", "window", "with", "without",
    };
    return words;
}
}  // namespace

namespace {
std::uint64_t next_dialect_id() noexcept {
    static std::atomic<std::uint64_t> next{1};
    return next.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

Dialect::Dialect() noexcept : cache_id_(next_dialect_id()) {}
Dialect::Dialect(const Dialect&) noexcept : cache_id_(next_dialect_id()) {}

bool Dialect::requires_quotes(std::string_view ident) const {
    if (ident.empty()) return true;
    if (reserved_words().contains(ident)) return true;
    char first = ident.front();
    if (!((first >= 'a' && first <= 'z') || first == '_')) return true;
    for (char c : ident)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '$'))
            return true;
    return false;
}

std::string Dialect::quote_identifier(std::string_view ident) const {
    std::string out;
    out.reserve(ident.size() + 2);
    out += '"';
    for (char c : ident) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
    return out;
}

std::string Dialect::quote(std::string_view ident) const {
    return requires_quotes(ident) ? quote_identifier(ident) : std::string(ident);
}

std::string Dialect::type_ddl(const TypeEngine& t) const {
    switch (t.kind()) {
        case TypeKind::Integer: return "INTEGER";
        case TypeKind::BigInteger: return "BIGINT";
        case TypeKind::Float: return "FLOAT";
        case TypeKind::Numeric:
            if (t.precision() > 0)
                return "NUMERIC(" + std::to_string(t.precision()) + ", " +
                       std::to_string(t.scale()) + ")";
            return "NUMERIC";
        case TypeKind::String:
            return t.length() > 0 ? "VARCHAR(" + std::to_string(t.length()) + ")" : "VARCHAR";
        case TypeKind::Text: return "TEXT";
        case TypeKind::Boolean: return "BOOLEAN";
        case TypeKind::Date: return "DATE";
        case TypeKind::DateTime: return "DATETIME";
        case TypeKind::LargeBinary: return "BLOB";
        case TypeKind::JSON: return "JSON";
        case TypeKind::Null: break;
    }
    throw CompileError("a column of NullType has no DDL type");
}

std::string Dialect::column_type_ddl(const Column& column) const { return type_ddl(column.type()); }

std::string Dialect::savepoint_sql(std::string_view name) const {
    return "SAVEPOINT " + quote(name);
}
std::string Dialect::release_savepoint_sql(std::string_view name) const {
    return "RELEASE SAVEPOINT " + quote(name);
}
std::string Dialect::rollback_to_savepoint_sql(std::string_view name) const {
    return "ROLLBACK TO SAVEPOINT " + quote(name);
}

bool DefaultDialect::has_table(SchemaConnection&, std::string_view) const {
    throw NotSupportedError("NotSupportedError", "the default dialect cannot reflect", "", "()", 0);
}
std::vector<std::string> DefaultDialect::get_table_names(SchemaConnection&) const {
    throw NotSupportedError("NotSupportedError", "the default dialect cannot reflect", "", "()", 0);
}
ReflectedTable DefaultDialect::reflect_table(SchemaConnection&, std::string_view) const {
    throw NotSupportedError("NotSupportedError", "the default dialect cannot reflect", "", "()", 0);
}

const Dialect& default_dialect() {
    static const DefaultDialect d;
    return d;
}

}  // namespace athanor
