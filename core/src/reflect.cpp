// MetaData::reflect: rebuilds Tables from what the dialect reads off a live database.
#include <athanor/core/connectable.hpp>
#include <athanor/core/dialect.hpp>
#include <athanor/core/exc.hpp>
#include <athanor/core/schema.hpp>

#include <algorithm>

namespace athanor {

namespace {
// A DEFAULT clause as stored: 'text' is a literal (quotes undone), anything else is SQL.
ServerDefaultOpt server_default_from_sql(const std::string& sql) {
    if (sql.size() >= 2 && sql.front() == '\'' && sql.back() == '\'') {
        std::string inner;
        for (std::size_t i = 1; i + 1 < sql.size(); ++i) {
            inner += sql[i];
            if (sql[i] == '\'' && sql[i + 1] == '\'') ++i;
        }
        return {inner, false};
    }
    return {sql, true};
}

// Reflects what can be represented; a default, key or index that cannot be is skipped with a
// warning, so that the reflected schema can always be created again.
std::unique_ptr<Table> build_table(const ReflectedTable& rt, SchemaConnection& conn) {
    auto skipped = [&](const std::string& what, const std::exception& e) {
        conn.warn("reflection of table '" + rt.name + "': skipped " + what + ": " + e.what());
    };
    std::vector<Column> cols;
    std::vector<const ReflectedColumn*> pk;
    for (const auto& rc : rt.columns) {
        Column c(rc.name, rc.type, primary_key(rc.primary_key_position > 0), nullable(rc.nullable));
        if (rc.default_sql) {
            try {
                c.add(server_default_from_sql(*rc.default_sql));
            } catch (const ArgumentError& e) {
                skipped("the default of column '" + rc.name + "'", e);
            }
        }
        for (const auto& fk : rt.foreign_keys)
            if (fk.columns.size() == 1 && fk.columns.front() == rc.name && fk.referred_columns.size() == 1) {
                try {
                    c.add(ForeignKey(fk.referred_table + "." + fk.referred_columns.front(),
                                     {fk.ondelete, fk.onupdate, ""}));
                } catch (const ArgumentError& e) {
                    skipped("the foreign key of column '" + rc.name + "'", e);
                }
            }
        for (const auto& ix : rt.indexes) {
            if (ix.columns.size() != 1 || ix.columns.front() != rc.name) continue;
            if (ix.from_constraint && ix.unique) c.add(unique());
            if (!ix.from_constraint && ix.name == "ix_" + rt.name + "_" + rc.name) {
                c.add(index());
                if (ix.unique) c.add(unique());
            }
        }
        if (rc.primary_key_position > 0) pk.push_back(&rc);
        cols.push_back(std::move(c));
    }
    auto t = std::make_unique<Table>(rt.name, std::move(cols));
    std::sort(pk.begin(), pk.end(), [](auto* a, auto* b) {
        return a->primary_key_position < b->primary_key_position;
    });
    bool in_column_order = true;
    for (std::size_t i = 0; i < pk.size(); ++i)
        if (t->primary_key()[i]->name() != pk[i]->name)
            in_column_order = false;
    if (!in_column_order) {
        PrimaryKeyConstraint pkc;
        for (auto* c : pk) pkc.columns.push_back(c->name);
        t->add_constraint(pkc);
    }
    for (const auto& fk : rt.foreign_keys) {
        if (fk.columns.size() == 1) continue;
        ForeignKeyConstraint fkc{fk.columns, {}, {fk.ondelete, fk.onupdate, ""}};
        for (const auto& rc : fk.referred_columns) fkc.targets.push_back(fk.referred_table + "." + rc);
        try {
            t->add_constraint(fkc);
        } catch (const ArgumentError& e) {
            skipped("a foreign key constraint", e);
        }
    }
    for (const auto& ix : rt.indexes) {
        if (ix.columns.size() == 1) {
            const std::string& col = ix.columns.front();
            if (ix.from_constraint && ix.unique) continue;
            if (!ix.from_constraint && ix.name == "ix_" + rt.name + "_" + col) continue;
        }
        try {
            if (ix.from_constraint) t->add_constraint(UniqueConstraint{ix.columns, ""});
            else t->add_index(Index{ix.name, ix.columns, ix.unique});
        } catch (const ArgumentError& e) {
            skipped("index '" + ix.name + "'", e);
        }
    }
    return t;
}
}  // namespace

void MetaData::reflect(Connectable& bind, const std::vector<std::string>& only) {
    std::vector<std::unique_ptr<Table>> found;
    bind.run_schema_work([&](SchemaConnection& conn) {
        const Dialect& d = conn.dialect();
        std::vector<std::string> names = only.empty() ? d.get_table_names(conn) : only;
        for (const auto& n : names) {
            ReflectedTable rt = d.reflect_table(conn, n);
            try {
                found.push_back(build_table(rt, conn));
            } catch (const ArgumentError& e) {
                if (!only.empty()) throw;  // a table asked for by name must come back
                conn.warn("reflection skipped table '" + n + "': " + e.what());
            }
        }
    });
    for (auto& t : found) {
        remove(t->name());
        add_table(std::move(t));
    }
}

}  // namespace athanor
