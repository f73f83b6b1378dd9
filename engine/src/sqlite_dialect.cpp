#include <athanor/core/connectable.hpp>
#include <athanor/core/exc.hpp>
#include <athanor/engine/sqlite_dialect.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <sqlite3.h>

namespace athanor {

SQLiteDialect::SQLiteDialect() : returning_(sqlite3_libversion_number() >= 3035000) {}

namespace {
std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}
std::string text_of(const Value& v) { return v.is_null() ? std::string() : v.as<std::string>(); }

// SQLite's parser takes `DEFAULT name`, `DEFAULT "name"`, `DEFAULT [name]` and `DEFAULT `name``
// as the string 'name' (but a bare TRUE/FALSE as a boolean, NULL and CURRENT_* as themselves),
// while table_info reports the token as written. Written back as it stands, in parentheses or
// on another database, it would name a column; so it is reflected as the string literal it is.
std::string default_as_stored(std::string sql) {
    auto ident_byte = [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '$' || c >= 0x80; };
    auto literal = [](std::string_view text) {
        std::string out = "'";
        for (char c : text) {
            if (c == '\'') out += '\'';
            out += c;
        }
        return out + "'";
    };
    if (sql.size() >= 2) {
        char open = sql.front();
        char close = open == '[' ? ']' : open;
        if ((open == '"' || open == '`' || open == '[') && sql.back() == close) {
            std::string inner;
            for (std::size_t i = 1; i + 1 < sql.size(); ++i) {
                if (sql[i] == close) {
                    if (close == ']' || i + 2 >= sql.size() || sql[i + 1] != close) return sql;  // not one token
                    ++i;  // a doubled quote
                }
                inner += sql[i];
            }
            return literal(inner);
        }
    }
    if (sql.empty() || std::isdigit(static_cast<unsigned char>(sql.front())) || sql.front() == '$') return sql;
    for (char c : sql)
        if (!ident_byte(static_cast<unsigned char>(c))) return sql;
    std::string up = upper(sql);
    if (up == "TRUE" || up == "FALSE" || up == "NULL" || up == "CURRENT_TIME" || up == "CURRENT_DATE" ||
        up == "CURRENT_TIMESTAMP")
        return sql;
    return literal(sql);
}
}  // namespace

TypeEngine SQLiteDialect::type_from_ddl(const std::string& declared) {
    std::string d = upper(declared);
    std::string base = d.substr(0, d.find('('));
    while (!base.empty() && base.back() == ' ') base.pop_back();
    std::vector<int> args;
    if (auto p = d.find('('); p != std::string::npos) {
        std::string inner = d.substr(p + 1, d.find(')') - p - 1);
        std::size_t pos = 0;
        while (pos < inner.size()) {
            auto comma = inner.find(',', pos);
            try {
                int a = std::stoi(inner.substr(pos, comma - pos));
                args.push_back(a >= 0 ? a : 0);  // VARCHAR(-5): SQLite ignores it, so do we
            } catch (const std::exception&) {
                args.push_back(0);
            }
            if (comma == std::string::npos) break;
            pos = comma + 1;
        }
    }
    int a0 = args.size() > 0 ? args[0] : 0, a1 = args.size() > 1 ? args[1] : 0;
    static const std::map<std::string, TypeKind> exact = {
        {"INTEGER", TypeKind::Integer},   {"INT", TypeKind::Integer},
        {"SMALLINT", TypeKind::Integer},  {"BIGINT", TypeKind::BigInteger},
        {"FLOAT", TypeKind::Float},       {"REAL", TypeKind::Float},
        {"DOUBLE", TypeKind::Float},      {"DOUBLE PRECISION", TypeKind::Float},
        {"NUMERIC", TypeKind::Numeric},   {"DECIMAL", TypeKind::Numeric},
        {"VARCHAR", TypeKind::String},    {"NVARCHAR", TypeKind::String},
        {"CHAR", TypeKind::String},       {"NCHAR", TypeKind::String},
        {"TEXT", TypeKind::Text},         {"CLOB", TypeKind::Text},
        {"BOOLEAN", TypeKind::Boolean},   {"DATE", TypeKind::Date},
        {"DATETIME", TypeKind::DateTime}, {"TIMESTAMP", TypeKind::DateTime},
        {"BLOB", TypeKind::LargeBinary},  {"JSON", TypeKind::JSON},
    };
    if (auto it = exact.find(base); it != exact.end()) {
        switch (it->second) {
            case TypeKind::String: return String(a0);
            case TypeKind::Numeric: return Numeric(a0, a1);
            default: return TypeEngine(it->second);
        }
    }
    // SQLite's affinity rules for anything else.
    if (d.find("INT") != std::string::npos) return Integer();
    if (d.find("CHAR") != std::string::npos || d.find("CLOB") != std::string::npos ||
        d.find("TEXT") != std::string::npos)
        return Text();
    if (d.empty() || d.find("BLOB") != std::string::npos) return LargeBinary();
    if (d.find("REAL") != std::string::npos || d.find("FLOA") != std::string::npos ||
        d.find("DOUB") != std::string::npos)
        return Float();
    return Numeric();
}

bool SQLiteDialect::has_table(SchemaConnection& conn, std::string_view table) const {
    std::string q = quote_identifier(table);
    if (!conn.execute_raw("PRAGMA main.table_info(" + q + ")").empty()) return true;
    return !conn.execute_raw("PRAGMA temp.table_info(" + q + ")").empty();
}

std::vector<std::string> SQLiteDialect::get_table_names(SchemaConnection& conn) const {
    std::vector<std::string> out;
    for (const auto& row : conn.execute_raw(
             "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite~_%' "
             "ESCAPE '~' ORDER BY name"))
        out.push_back(text_of(row[0]));
    return out;
}

ReflectedTable SQLiteDialect::reflect_table(SchemaConnection& conn, std::string_view table) const {
    std::string q = quote_identifier(table);
    ReflectedTable t;
    t.name = std::string(table);
    // table_info: cid, name, type, notnull, dflt_value, pk
    for (const auto& r : conn.execute_raw("PRAGMA main.table_info(" + q + ")")) {
        ReflectedColumn c;
        c.name = text_of(r[1]);
        c.type = type_from_ddl(text_of(r[2]));
        c.nullable = r[3].as<std::int64_t>() == 0;
        if (!r[4].is_null()) c.default_sql = default_as_stored(text_of(r[4]));
        c.primary_key_position = static_cast<int>(r[5].as<std::int64_t>());
        t.columns.push_back(std::move(c));
    }
    if (t.columns.empty()) throw NoSuchTableError("no table named '" + t.name + "' in the database");
    // foreign_key_list: id, seq, table, from, to, on_update, on_delete, match
    std::map<std::int64_t, ReflectedForeignKey> fks;
    std::map<std::int64_t, bool> implicit_targets;  // REFERENCES parent (its primary key)
    for (const auto& r : conn.execute_raw("PRAGMA main.foreign_key_list(" + q + ")")) {
        auto id = r[0].as<std::int64_t>();
        auto& fk = fks[id];
        fk.referred_table = text_of(r[2]);
        fk.columns.push_back(text_of(r[3]));
        if (r[4].is_null()) implicit_targets[id] = true;
        else fk.referred_columns.push_back(text_of(r[4]));
        std::string onup = text_of(r[5]), ondel = text_of(r[6]);
        fk.onupdate = onup == "NO ACTION" ? "" : onup;
        fk.ondelete = ondel == "NO ACTION" ? "" : ondel;
    }
    for (auto& [id, implicit] : implicit_targets) {
        // "REFERENCES parent" names no column: it means the parent's primary key.
        auto& fk = fks[id];
        std::vector<std::pair<std::int64_t, std::string>> pk;
        for (const auto& r : conn.execute_raw("PRAGMA main.table_info(" + quote_identifier(fk.referred_table) + ")"))
            if (r[5].as<std::int64_t>() > 0) pk.emplace_back(r[5].as<std::int64_t>(), text_of(r[1]));
        std::sort(pk.begin(), pk.end());
        if (pk.size() != fk.columns.size()) {
            conn.warn("reflection of table '" + t.name + "': skipped the foreign key on (" + fk.columns.front() +
                      ") to '" + fk.referred_table + "', whose primary key could not be matched");
            fks.erase(id);
            continue;
        }
        for (auto& [pos, name] : pk) fk.referred_columns.push_back(name);
    }
    // SQLite lists foreign keys last-declared first; restore declaration order.
    for (auto it = fks.rbegin(); it != fks.rend(); ++it) t.foreign_keys.push_back(it->second);
    // index_list: seq, name, unique, origin, partial
    auto idx_rows = conn.execute_raw("PRAGMA main.index_list(" + q + ")");
    std::reverse(idx_rows.begin(), idx_rows.end());
    for (const auto& r : idx_rows) {
        std::string origin = text_of(r[3]);
        if (origin == "pk") continue;
        ReflectedIndex ix;
        ix.name = text_of(r[1]);
        ix.unique = r[2].as<std::int64_t>() != 0;
        ix.from_constraint = origin == "u";
        bool expression = false;
        for (const auto& ir : conn.execute_raw("PRAGMA main.index_info(" + quote_identifier(ix.name) + ")")) {
            if (ir[2].is_null()) expression = true;  // an expression, as in ON t(lower(name))
            else ix.columns.push_back(text_of(ir[2]));
        }
        if (expression) {
            conn.warn("reflection of table '" + t.name + "': skipped index '" + ix.name +
                      "', which indexes an expression (not representable as columns)");
            continue;
        }
        t.indexes.push_back(std::move(ix));
    }
    return t;
}

}  // namespace athanor
