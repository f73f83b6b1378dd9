#include <athanor/core/connectable.hpp>
#include <athanor/core/exc.hpp>
#include <athanor/core/schema.hpp>
#include <athanor/engine/postgresql_dialect.hpp>

#include <algorithm>
#include <map>
#include <unordered_set>

namespace athanor {

namespace {
// PostgreSQL's reserved key words (SQL Key Words appendix, "reserved" and "reserved (can be
// function or type)") that the shared list does not already hold.
const std::unordered_set<std::string_view>& pg_reserved() {
    static const std::unordered_set<std::string_view> words = {
        "analyse", "array", "asymmetric", "authorization", "binary", "concurrently",
        "current_catalog", "current_role", "current_schema", "current_user", "fetch", "freeze",
        "grant", "ilike", "lateral", "localtime", "localtimestamp", "overlaps", "placing",
        "session_user", "similar", "system_user", "tablesample", "variadic", "verbose",
    };
    return words;
}

std::string text_of(const Value& v) { return v.is_null() ? std::string() : v.as<std::string>(); }

/// A string literal for the catalog queries: E'...' with quotes and backslashes escaped, so
/// it reads the same whatever standard_conforming_strings says. NUL cannot be sent.
std::string literal(std::string_view s) {
    if (s.find('\0') != std::string_view::npos) throw ArgumentError("a table name cannot contain a NUL character");
    std::string out = "E'";
    for (char c : s) {
        if (c == '\'' || c == '\\') out += c;
        out += c;
    }
    return out + "'";
}

std::string ref_action(const std::string& code) {
    if (code == "c") return "CASCADE";
    if (code == "n") return "SET NULL";
    if (code == "d") return "SET DEFAULT";
    if (code == "r") return "RESTRICT";
    return "";  // 'a': NO ACTION, the default
}

const char* const kTableOid =
    "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname = ";
}  // namespace

bool PGDialect::requires_quotes(std::string_view ident) const {
    return Dialect::requires_quotes(ident) || pg_reserved().contains(ident);
}

std::string PGDialect::type_ddl(const TypeEngine& t) const {
    switch (t.kind()) {
        case TypeKind::DateTime: return "TIMESTAMP WITHOUT TIME ZONE";
        case TypeKind::LargeBinary: return "BYTEA";
        default: return Dialect::type_ddl(t);
    }
}

std::string PGDialect::column_type_ddl(const Column& c) const {
    if (c.autoincrement() && !c.has_default() && !c.server_default())
        return c.type().kind() == TypeKind::BigInteger ? "BIGSERIAL" : "SERIAL";
    return type_ddl(c.type());
}

TypeEngine PGDialect::type_from_pg(const std::string& f) {
    std::string base = f.substr(0, f.find('('));
    std::vector<int> args;
    if (auto p = f.find('('); p != std::string::npos) {
        std::size_t pos = p + 1;
        while (pos < f.size()) {
            try {
                args.push_back(std::stoi(f.substr(pos)));
            } catch (const std::exception&) {
                args.push_back(0);
            }
            auto comma = f.find(',', pos);
            if (comma == std::string::npos) break;
            pos = comma + 1;
        }
    }
    int a0 = args.size() > 0 ? args[0] : 0, a1 = args.size() > 1 ? args[1] : 0;
    static const std::map<std::string, TypeKind> exact = {
        {"integer", TypeKind::Integer},
        {"smallint", TypeKind::Integer},
        {"bigint", TypeKind::BigInteger},
        {"double precision", TypeKind::Float},
        {"real", TypeKind::Float},
        {"numeric", TypeKind::Numeric},
        {"character varying", TypeKind::String},
        {"character", TypeKind::String},
        {"text", TypeKind::Text},
        {"boolean", TypeKind::Boolean},
        {"date", TypeKind::Date},
        {"timestamp without time zone", TypeKind::DateTime},
        {"timestamp with time zone", TypeKind::DateTime},
        {"bytea", TypeKind::LargeBinary},
        {"json", TypeKind::JSON},
        {"jsonb", TypeKind::JSON},
    };
    // "timestamp(3) without time zone": the precision sits inside the name.
    std::string key = base;
    if (auto close = f.find(')'); close != std::string::npos && base.rfind("timestamp", 0) == 0)
        key = "timestamp" + f.substr(close + 1);
    auto it = exact.find(key);
    if (it == exact.end()) return Text();
    switch (it->second) {
        case TypeKind::String: return String(a0);
        case TypeKind::Numeric: return Numeric(a0, a1);
        default: return TypeEngine(it->second);
    }
}

bool PGDialect::has_table(SchemaConnection& conn, std::string_view table) const {
    return !conn.execute_raw(kTableOid + literal(table)).empty();
}

std::vector<std::string> PGDialect::get_table_names(SchemaConnection& conn) const {
    std::vector<std::string> out;
    for (const auto& row : conn.execute_raw(
             "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
             "c.relnamespace WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname"))
        out.push_back(text_of(row[0]));
    return out;
}

ReflectedTable PGDialect::reflect_table(SchemaConnection& conn, std::string_view table) const {
    ReflectedTable t;
    t.name = std::string(table);
    auto oid_rows = conn.execute_raw(kTableOid + literal(table));
    if (oid_rows.empty()) throw NoSuchTableError("no table named '" + t.name + "' in the database");
    const std::string oid = std::to_string(oid_rows[0][0].as<std::int64_t>());

    std::map<std::int64_t, int> pk_position;  // attnum -> 1-based position
    for (const auto& r : conn.execute_raw(
             "SELECT k.attnum, k.ord FROM pg_catalog.pg_constraint con, unnest(con.conkey) WITH ORDINALITY "
             "AS k(attnum, ord) WHERE con.conrelid = " + oid + " AND con.contype = 'p'"))
        pk_position[r[0].as<std::int64_t>()] = static_cast<int>(r[1].as<std::int64_t>());

    for (const auto& r : conn.execute_raw(
             "SELECT a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, "
             "pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attribute a LEFT JOIN "
             "pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = " +
             oid + " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum")) {
        ReflectedColumn c;
        c.name = text_of(r[1]);
        c.type = type_from_pg(text_of(r[2]));
        c.nullable = r[3].as<std::int64_t>() == 0;
        std::string def = text_of(r[4]);
        // A SERIAL column's nextval() default is the autoincrement itself, not a server default.
        if (!r[4].is_null() && def.rfind("nextval(", 0) != 0) {
            // 'x'::character varying -> 'x'
            if (def.size() > 2 && def.front() == '\'' ) {
                auto end = def.rfind("'::");
                if (end != std::string::npos && end > 0) def = def.substr(0, end + 1);
            }
            c.default_sql = def;
        }
        auto pk = pk_position.find(r[0].as<std::int64_t>());
        c.primary_key_position = pk == pk_position.end() ? 0 : pk->second;
        t.columns.push_back(std::move(c));
    }

    for (const auto& fk_row : conn.execute_raw(
             "SELECT con.oid, cl.relname, con.confupdtype, con.confdeltype, con.conname FROM pg_catalog.pg_constraint con "
             "JOIN pg_catalog.pg_class cl ON cl.oid = con.confrelid WHERE con.conrelid = " + oid +
             " AND con.contype = 'f' ORDER BY con.conname")) {
        ReflectedForeignKey fk;
        fk.referred_table = text_of(fk_row[1]);
        fk.name = text_of(fk_row[4]);
        fk.onupdate = ref_action(text_of(fk_row[2]));
        fk.ondelete = ref_action(text_of(fk_row[3]));
        for (const auto& r : conn.execute_raw(
                 "SELECT a.attname, fa.attname FROM pg_catalog.pg_constraint con CROSS JOIN LATERAL unnest(con.conkey, con.confkey) "
                 "WITH ORDINALITY AS k(col, fcol, ord) JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid "
                 "AND a.attnum = k.col JOIN pg_catalog.pg_attribute fa ON fa.attrelid = con.confrelid AND "
                 "fa.attnum = k.fcol WHERE con.oid = " + std::to_string(fk_row[0].as<std::int64_t>()) +
                 " ORDER BY k.ord")) {
            fk.columns.push_back(text_of(r[0]));
            fk.referred_columns.push_back(text_of(r[1]));
        }
        t.foreign_keys.push_back(std::move(fk));
    }

    for (const auto& ix_row : conn.execute_raw(
             "SELECT i.oid, i.relname, ix.indisunique, ix.indexprs IS NOT NULL OR ix.indpred IS NOT NULL, "
             "EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = ix.indexrelid AND c.contype "
             "= 'u') FROM pg_catalog.pg_index ix JOIN pg_catalog.pg_class i ON i.oid = ix.indexrelid WHERE "
             "ix.indrelid = " + oid + " AND NOT ix.indisprimary ORDER BY i.relname")) {
        ReflectedIndex ix;
        ix.name = text_of(ix_row[1]);
        ix.unique = ix_row[2].as<std::int64_t>() != 0;
        ix.from_constraint = ix_row[4].as<std::int64_t>() != 0;
        if (ix_row[3].as<std::int64_t>() != 0) {
            conn.warn("reflection of table '" + t.name + "': skipped index '" + ix.name +
                      "', which indexes an expression or has a WHERE clause (not representable as columns)");
            continue;
        }
        for (const auto& r : conn.execute_raw(
                 "SELECT a.attname FROM pg_catalog.pg_index ix CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
                 "JOIN pg_catalog.pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum WHERE "
                 "ix.indexrelid = " + std::to_string(ix_row[0].as<std::int64_t>()) + " ORDER BY k.ord"))
            ix.columns.push_back(text_of(r[0]));
        t.indexes.push_back(std::move(ix));
    }
    return t;
}

}  // namespace athanor
