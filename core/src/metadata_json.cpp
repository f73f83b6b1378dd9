// MetaData <-> JSON, and MetaData::reflect. The JSON document is athanor's own schema format:
// {"tables": [{"name", "columns": [...], "primary_key": {...}, "unique_constraints": [...],
//   "foreign_keys": [...], "indexes": [...]}]}; see README "Schemas as JSON".
#include <athanor/core/connectable.hpp>
#include <athanor/core/dialect.hpp>
#include <athanor/core/exc.hpp>
#include <athanor/core/schema.hpp>

#include <climits>
#include <cstdint>

#include <nlohmann/json.hpp>

namespace athanor {

using nlohmann::json;

namespace {

json value_to_json(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::null: return nullptr;
        case Value::Kind::integer: return v.as_int();
        case Value::Kind::real: return v.as_double();
        case Value::Kind::text: return v.as_text();
        case Value::Kind::blob: {
            static const char* hex = "0123456789abcdef";
            std::string s;
            for (auto b : v.as_blob()) {
                s += hex[b >> 4];
                s += hex[b & 15];
            }
            return json{{"blob_hex", s}};
        }
    }
    return nullptr;
}

[[noreturn]] void bad(const std::string& path, const std::string& what) {
    throw ArgumentError("invalid schema document: " + path + ": " + what);
}

Value value_from_json(const json& j, const std::string& path) {
    if (j.is_null()) return Value();
    if (j.is_number_unsigned() && j.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
        bad(path, "integer " + j.dump() + " does not fit in a 64-bit signed integer");
    if (j.is_number_integer()) return Value(j.get<std::int64_t>());
    if (j.is_number_float()) return Value(j.get<double>());
    if (j.is_string()) return Value(j.get<std::string>());
    if (j.is_boolean()) return Value(j.get<bool>());
    if (j.is_object() && j.size() == 1 && j.contains("blob_hex") && j["blob_hex"].is_string()) {
        std::string s = j["blob_hex"].get<std::string>();
        if (s.size() % 2) bad(path, "blob_hex has an odd number of digits");
        auto nibble = [&](char c) -> std::uint8_t {
            if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
            if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
            if (c >= 'A' && c <= 'F') return static_cast<std::uint8_t>(c - 'A' + 10);
            bad(path, "blob_hex is not hexadecimal");
        };
        Blob b;
        for (std::size_t i = 0; i < s.size(); i += 2)
            b.push_back(static_cast<std::uint8_t>(nibble(s[i]) << 4 | nibble(s[i + 1])));
        return Value(std::move(b));
    }
    bad(path, "not a value (null, number, string or {\"blob_hex\": ...})");
}

const json& field(const json& obj, const char* name, const std::string& path) {
    if (!obj.is_object()) bad(path, "expected an object");
    auto it = obj.find(name);
    if (it == obj.end()) bad(path + "." + name, "missing");
    return *it;
}

std::string str_field(const json& obj, const char* name, const std::string& path) {
    const json& v = field(obj, name, path);
    if (!v.is_string()) bad(path + "." + name, "expected a string");
    std::string s = v.get<std::string>();
    return s;
}

std::string opt_str(const json& obj, const char* name, const std::string& path) {
    auto it = obj.find(name);
    if (it == obj.end() || it->is_null()) return "";
    if (!it->is_string()) bad(path + "." + name, "expected a string");
    return it->get<std::string>();
}

bool opt_bool(const json& obj, const char* name, const std::string& path, bool dflt) {
    auto it = obj.find(name);
    if (it == obj.end()) return dflt;
    if (!it->is_boolean()) bad(path + "." + name, "expected true or false");
    return it->get<bool>();
}

int opt_int(const json& obj, const char* name, const std::string& path) {
    auto it = obj.find(name);
    if (it == obj.end()) return 0;
    if (!it->is_number_integer() || (it->is_number_unsigned() ? it->get<std::uint64_t>() > INT_MAX
                                                               : (it->get<std::int64_t>() < 0 ||
                                                                  it->get<std::int64_t>() > INT_MAX)))
        bad(path + "." + name, "expected a non-negative integer up to " + std::to_string(INT_MAX));
    return static_cast<int>(it->get<std::int64_t>());
}

// Unknown keys are errors: a misspelt "nulable" must not silently give a nullable column.
void check_keys(const json& obj, std::initializer_list<const char*> allowed, const std::string& path) {
    if (!obj.is_object()) bad(path, "expected an object");
    for (const auto& [k, v] : obj.items()) {
        bool known = false;
        for (const char* a : allowed) known |= k == a;
        if (!known) {
            std::string names;
            for (const char* a : allowed) names += (names.empty() ? "" : ", ") + std::string(a);
            bad(path, "unknown key \"" + k + "\" (expected one of: " + names + ")");
        }
    }
}

std::vector<std::string> str_list(const json& obj, const char* name, const std::string& path) {
    const json& v = field(obj, name, path);
    if (!v.is_array()) bad(path + "." + name, "expected an array of strings");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_string()) bad(path + "." + name + "[" + std::to_string(i) + "]", "expected a string");
        out.push_back(v[i].get<std::string>());
    }
    return out;
}

json fk_options_json(const ForeignKeyOptions& o) {
    json j = json::object();
    if (!o.ondelete.empty()) j["ondelete"] = o.ondelete;
    if (!o.onupdate.empty()) j["onupdate"] = o.onupdate;
    if (!o.name.empty()) j["name"] = o.name;
    if (o.use_alter) j["use_alter"] = true;
    return j;
}

ForeignKeyOptions fk_options_from(const json& j, const std::string& path) {
    return {opt_str(j, "ondelete", path), opt_str(j, "onupdate", path), opt_str(j, "name", path),
            opt_bool(j, "use_alter", path, false)};
}

}  // namespace

json MetaData::to_json() const {
    json tables = json::array();
    for (const Table* t : sorted_tables()) {
        json cols = json::array();
        for (const auto& cp : t->columns()) {
            const Column& c = *cp;
            json jc = {{"name", c.name()}, {"type", std::string(c.type().name())}};
            if (c.type().length()) jc["length"] = c.type().length();
            if (c.type().precision()) jc["precision"] = c.type().precision();
            if (c.type().scale()) jc["scale"] = c.type().scale();
            jc["nullable"] = c.nullable();
            if (c.primary_key()) jc["primary_key"] = true;
            if (c.unique()) jc["unique"] = true;
            if (c.index()) jc["index"] = true;
            if (c.has_callable_default())
                throw ArgumentError("to_json(): column '" + t->name() + "." + c.name() +
                                    "' has a callable default, which cannot be serialized");
            if (c.explicit_autoincrement()) jc["autoincrement"] = *c.explicit_autoincrement();
            if (c.has_default()) jc["default"] = value_to_json(c.default_value());
            if (const auto& sd = c.server_default())
                jc["server_default"] = json{{sd->is_sql ? "sql" : "literal", sd->text}};
            if (!c.foreign_keys().empty()) {
                json fks = json::array();
                for (const auto& fk : c.foreign_keys()) {
                    json jf = fk_options_json(fk.options());
                    jf["target"] = fk.target();
                    fks.push_back(jf);
                }
                jc["foreign_keys"] = fks;
            }
            cols.push_back(jc);
        }
        json jt = {{"name", t->name()}, {"columns", cols}};
        // Record the key order explicitly when it differs from column order, or it is named.
        std::vector<std::string> pk;
        for (const Column* c : t->primary_key()) pk.push_back(c->name());
        std::vector<std::string> col_order_pk;
        for (const auto& cp : t->columns())
            if (cp->primary_key()) col_order_pk.push_back(cp->name());
        bool pk_from_columns = pk == col_order_pk && t->primary_key_name().empty();
        if (!pk_from_columns) {
            jt["primary_key"] = {{"columns", pk}};
            if (!t->primary_key_name().empty()) jt["primary_key"]["name"] = t->primary_key_name();
        }
        if (!t->unique_constraints().empty()) {
            json u = json::array();
            for (const auto& uq : t->unique_constraints()) {
                json ju = {{"columns", uq.columns}};
                if (!uq.name.empty()) ju["name"] = uq.name;
                u.push_back(ju);
            }
            jt["unique_constraints"] = u;
        }
        if (!t->foreign_key_constraints().empty()) {
            json f = json::array();
            for (const auto& fk : t->foreign_key_constraints()) {
                json jf = fk_options_json(fk.options);
                jf["columns"] = fk.columns;
                jf["targets"] = fk.targets;
                f.push_back(jf);
            }
            jt["foreign_keys"] = f;
        }
        if (!t->indexes().empty()) {
            json ix = json::array();
            for (const auto& i : t->indexes())
                ix.push_back({{"name", i.name}, {"columns", i.columns}, {"unique", i.unique}});
            jt["indexes"] = ix;
        }
        tables.push_back(jt);
    }
    return json{{"athanor_schema", 1}, {"tables", tables}};
}

MetaData MetaData::from_json(const json& doc) {
    MetaData md;
    if (!doc.is_object()) bad("$", "expected an object with a \"tables\" array");
    check_keys(doc, {"athanor_schema", "tables"}, "$");
    const json& tables = field(doc, "tables", "$");
    if (!tables.is_array()) bad("tables", "expected an array");
    for (std::size_t ti = 0; ti < tables.size(); ++ti) {
        std::string tp = "tables[" + std::to_string(ti) + "]";
        const json& jt = tables[ti];
        check_keys(jt, {"name", "columns", "primary_key", "unique_constraints", "foreign_keys", "indexes"}, tp);
        std::string tname = str_field(jt, "name", tp);
        if (tname.empty()) bad(tp + ".name", "empty table name");
        if (md.contains(tname)) bad(tp + ".name", "duplicate table '" + tname + "'");
        const json& jcols = field(jt, "columns", tp);
        if (!jcols.is_array() || jcols.empty()) bad(tp + ".columns", "expected a non-empty array");
        std::vector<Column> cols;
        for (std::size_t ci = 0; ci < jcols.size(); ++ci) {
            std::string cp = tp + ".columns[" + std::to_string(ci) + "]";
            const json& jc = jcols[ci];
            check_keys(jc, {"name", "type", "length", "precision", "scale", "nullable", "primary_key", "unique",
                            "index", "autoincrement", "default", "server_default", "foreign_keys"},
                       cp);
            std::string cname = str_field(jc, "name", cp);
            if (cname.empty()) bad(cp + ".name", "empty column name");
            std::string tyname = str_field(jc, "type", cp);
            TypeEngine type;
            int length = opt_int(jc, "length", cp), precision = opt_int(jc, "precision", cp),
                scale = opt_int(jc, "scale", cp);
            try {
                type = TypeEngine::from_name(tyname, length, precision, scale);
            } catch (const ArgumentError&) {
                bad(cp + ".type", "unknown type '" + tyname + "'");
            }
            bool pk = opt_bool(jc, "primary_key", cp, false);
            Column col(cname, type, primary_key(pk), nullable(opt_bool(jc, "nullable", cp, !pk)),
                       unique(opt_bool(jc, "unique", cp, false)), index(opt_bool(jc, "index", cp, false)));
            if (jc.contains("autoincrement")) col.add(autoincrement(opt_bool(jc, "autoincrement", cp, true)));
            if (jc.contains("default")) col.add(default_(value_from_json(jc["default"], cp + ".default")));
            if (jc.contains("server_default")) {
                const json& sd = jc["server_default"];
                std::string sp = cp + ".server_default";
                if (!sd.is_object() || sd.size() != 1 || !(sd.contains("sql") || sd.contains("literal")))
                    bad(sp, "expected {\"literal\": text} or {\"sql\": text}");
                bool is_sql = sd.contains("sql");
                const json& text = is_sql ? sd["sql"] : sd["literal"];
                if (!text.is_string()) bad(sp, "expected a string");
                try {
                    col.add(ServerDefaultOpt{text.get<std::string>(), is_sql});
                } catch (const ArgumentError& e) {
                    bad(sp, e.what());
                }
            }
            if (jc.contains("foreign_keys")) {
                const json& fks = jc["foreign_keys"];
                if (!fks.is_array()) bad(cp + ".foreign_keys", "expected an array");
                for (std::size_t fi = 0; fi < fks.size(); ++fi) {
                    std::string fp = cp + ".foreign_keys[" + std::to_string(fi) + "]";
                    check_keys(fks[fi], {"target", "ondelete", "onupdate", "name", "use_alter"}, fp);
                    std::string target = str_field(fks[fi], "target", fp);
                    try {
                        col.add(ForeignKey(target, fk_options_from(fks[fi], fp)));
                    } catch (const ArgumentError& e) {
                        bad(fp + ".target", e.what());
                    }
                }
            }
            cols.push_back(std::move(col));
        }
        Table* t = nullptr;
        try {
            t = &md.add_table(tname, std::move(cols));
        } catch (const ArgumentError& e) {
            bad(tp, e.what());
        }
        try {
            if (jt.contains("primary_key")) {
                const json& pk = jt["primary_key"];
                check_keys(pk, {"columns", "name"}, tp + ".primary_key");
                t->add_constraint(PrimaryKeyConstraint{str_list(pk, "columns", tp + ".primary_key"),
                                                       opt_str(pk, "name", tp + ".primary_key")});
            }
            if (jt.contains("unique_constraints")) {
                const json& u = jt["unique_constraints"];
                if (!u.is_array()) bad(tp + ".unique_constraints", "expected an array");
                for (std::size_t i = 0; i < u.size(); ++i) {
                    std::string p = tp + ".unique_constraints[" + std::to_string(i) + "]";
                    check_keys(u[i], {"columns", "name"}, p);
                    t->add_constraint(UniqueConstraint{str_list(u[i], "columns", p), opt_str(u[i], "name", p)});
                }
            }
            if (jt.contains("foreign_keys")) {
                const json& f = jt["foreign_keys"];
                if (!f.is_array()) bad(tp + ".foreign_keys", "expected an array");
                for (std::size_t i = 0; i < f.size(); ++i) {
                    std::string p = tp + ".foreign_keys[" + std::to_string(i) + "]";
                    check_keys(f[i], {"columns", "targets", "ondelete", "onupdate", "name", "use_alter"}, p);
                    t->add_constraint(ForeignKeyConstraint{str_list(f[i], "columns", p),
                                                           str_list(f[i], "targets", p),
                                                           fk_options_from(f[i], p)});
                }
            }
            if (jt.contains("indexes")) {
                const json& ix = jt["indexes"];
                if (!ix.is_array()) bad(tp + ".indexes", "expected an array");
                for (std::size_t i = 0; i < ix.size(); ++i) {
                    std::string p = tp + ".indexes[" + std::to_string(i) + "]";
                    check_keys(ix[i], {"name", "columns", "unique"}, p);
                    t->add_index(Index{str_field(ix[i], "name", p), str_list(ix[i], "columns", p),
                                       opt_bool(ix[i], "unique", p, false)});
                }
            }
        } catch (const ArgumentError& e) {
            std::string msg = e.what();
            if (msg.rfind("invalid schema document", 0) == 0) throw;
            bad(tp, msg);
        }
    }
    return md;
}

}  // namespace athanor
