// plan_migration: the live schema (reflected) against a MetaData, as ordered operations with
// their SQL; MigrationPlan::apply runs them in one transaction. What SQLite's ALTER TABLE
// cannot do is done by rebuilding the table (Alembic's batch mode).
#include "sql_guard.hpp"

#include <athanor/core/connectable.hpp>
#include <athanor/core/dialect.hpp>
#include <athanor/core/migration.hpp>
#include <athanor/core/schema.hpp>
#include <athanor/core/selectable.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

namespace athanor {

namespace {

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
    return out;
}

// A DEFAULT clause as the database shows it, for comparing: outer parentheses dropped.
std::string norm_default(std::string s) {
    while (s.size() >= 2 && s.front() == '(' && s.back() == ')') s = s.substr(1, s.size() - 2);
    return s;
}

std::string norm_action(const std::string& a) {
    std::string u = upper(a);
    return u == "NO ACTION" ? "" : u;
}

// Whether every value of `from` fits `to` unchanged.
bool widens(const TypeEngine& from, const TypeEngine& to) {
    const TypeKind f = from.kind(), t = to.kind();
    auto rank = [](TypeKind k) {
        switch (k) {
            case TypeKind::Boolean: return 0;
            case TypeKind::Integer: return 1;
            case TypeKind::BigInteger: return 2;
            default: return -1;
        }
    };
    if (f == t) {
        if (f == TypeKind::String) return to.length() == 0 || (from.length() != 0 && to.length() >= from.length());
        if (f == TypeKind::Numeric)
            return to.precision() == 0 || (from.precision() != 0 && to.scale() >= from.scale() &&
                                           to.precision() - to.scale() >= from.precision() - from.scale());
        return true;
    }
    if (rank(f) >= 0 && rank(t) >= 0) return rank(t) >= rank(f);
    if (t == TypeKind::Float) return f == TypeKind::Boolean || f == TypeKind::Integer;
    if (t == TypeKind::Numeric) return to.precision() == 0 && (rank(f) >= 0 || f == TypeKind::Float);
    if (t == TypeKind::Text || (t == TypeKind::String && to.length() == 0)) return f != TypeKind::LargeBinary;
    if (f == TypeKind::Date && t == TypeKind::DateTime) return true;
    return false;
}

struct IndexDef {
    std::string name;
    std::vector<std::string> columns;
    bool unique = false;
};
struct FkDef {
    std::string name;
    std::vector<std::string> columns;
    std::string target;
    std::vector<std::string> target_columns;
    std::string ondelete, onupdate;
    bool same(const FkDef& o) const {
        return columns == o.columns && target == o.target && target_columns == o.target_columns &&
               ondelete == o.ondelete && onupdate == o.onupdate;
    }
};

std::vector<IndexDef> wanted_indexes(const Table& t) {
    std::vector<IndexDef> out;
    for (const auto& c : t.columns())
        if (c->index()) out.push_back({"ix_" + t.name() + "_" + c->name(), {c->name()}, c->unique()});
    for (const auto& ix : t.indexes()) out.push_back({ix.name, ix.columns, ix.unique});
    return out;
}
std::vector<std::vector<std::string>> wanted_uniques(const Table& t) {
    std::vector<std::vector<std::string>> out;
    for (const auto& u : t.unique_constraints()) out.push_back(u.columns);
    for (const auto& c : t.columns())
        if (c->unique() && !c->index()) out.push_back({c->name()});
    return out;
}
std::vector<FkDef> wanted_fks(const Table& t) {
    std::vector<FkDef> out;
    for (const auto& fk : t.all_foreign_keys())
        out.push_back({fk.options.name, fk.columns, fk.target_table(), fk.target_columns(),
                       norm_action(fk.options.ondelete), norm_action(fk.options.onupdate)});
    return out;
}

}  // namespace

// Builds a plan: the diff, then the statements. A friend of MigrationPlan and MigrationOp.
class MigrationPlanner {
public:
    MigrationPlanner(SchemaConnection& conn, const MetaData& md, const MigrationOptions& opts)
        : conn_(conn), d_(conn.dialect()), md_(md), opts_(opts), rebuild_(!d_.supports_alter()) {
        plan_.dialect_ = std::string(d_.name());
    }

    MigrationPlan run() {
        read_database();
        apply_renames();
        // New tables, in dependency order.
        for (const Table* t : md_.sorted_tables()) {
            if (excluded(t->name()) || db_.count(t->name())) continue;
            std::size_t op = add_op(MigrationOpKind::add_table, t->name(), "", "", false);
            Step s{{op}, {}, {}};
            s.sql.push_back(trim(create_table_sql(*t, d_)));
            for (const auto& ix : create_index_sql(*t, d_)) s.sql.push_back(ix);
            for (const auto& a : add_constraints_sql(*t, d_)) s.sql.push_back(a);
            steps_.push_back(std::move(s));
        }
        // Tables in both.
        for (const Table* t : md_.sorted_tables())
            if (!excluded(t->name()) && db_.count(t->name())) diff_table(*t, db_.at(t->name()));
        // Tables only in the database: dropped, dependents first.
        std::vector<std::string> gone;
        for (const auto& [name, rt] : db_)
            if (!excluded(name) && !md_.find_table(name)) gone.push_back(name);
        std::vector<std::string> ordered;  // children (those referring to others in `gone`) first
        std::set<std::string> left(gone.begin(), gone.end());
        while (!left.empty()) {
            bool progress = false;
            for (auto it = left.begin(); it != left.end();) {
                bool referred = false;
                for (const auto& other : left)
                    if (other != *it)
                        for (const auto& fk : db_.at(other).foreign_keys)
                            if (fk.referred_table == *it) referred = true;
                if (referred) {
                    ++it;
                    continue;
                }
                ordered.push_back(*it);
                it = left.erase(it);
                progress = true;
            }
            if (!progress) {  // a cycle: any order (SQLite drops with foreign keys off; PostgreSQL may
                              // refuse, and then nothing of the plan is changed)
                ordered.insert(ordered.end(), left.begin(), left.end());
                left.clear();
            }
        }
        for (const auto& name : ordered) {
            std::size_t op = add_op(MigrationOpKind::drop_table, name, "", "", true);
            if (deferred(op)) continue;
            steps_.push_back({{op}, {}, {"DROP TABLE " + d_.quote(name)}});
        }
        finish();
        return std::move(plan_);
    }

private:
    using Step = MigrationPlan::Step;
    using Check = MigrationPlan::Check;

    static std::string trim(std::string s) {
        while (!s.empty() && (s.front() == '\n' || s.front() == ' ')) s.erase(s.begin());
        while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
        return s;
    }

    bool excluded(const std::string& name) const {
        return name == kSchemaVersionTable || name.rfind("_athanor_tmp_", 0) == 0 ||
               std::find(opts_.exclude_tables.begin(), opts_.exclude_tables.end(), name) != opts_.exclude_tables.end();
    }

    void read_database() {
        for (const auto& name : d_.get_table_names(conn_)) db_.emplace(name, d_.reflect_table(conn_, name));
        if (rebuild_)
            for (auto& [name, rt] : db_)
                for (const auto& row : conn_.execute_raw(
                         "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND sql IS NOT NULL AND tbl_name = " +
                         detail::sql_string_literal(name)))
                    if (!row.empty() && !row[0].is_null()) triggers_[name].push_back(row[0].as<std::string>());
    }

    std::size_t add_op(MigrationOpKind k, std::string table, std::string name, std::string detail, bool destructive) {
        plan_.ops_.emplace_back(k, std::move(table), std::move(name), std::move(detail), destructive);
        return plan_.ops_.size() - 1;
    }
    // With safe_only, a destructive op is moved to deferred(); true when it was.
    bool deferred(std::size_t op) {
        if (!opts_.safe_only || !plan_.ops_[op].destructive()) return false;
        dropped_ops_.insert(op);
        return true;
    }

    void apply_renames() {
        for (const Rename& r : opts_.renames) {
            if (r.table.empty()) {
                if (!db_.count(r.from)) continue;  // done before
                if (db_.count(r.to))
                    throw MigrationError("cannot rename table " + r.from + " to " + r.to + ": " + r.to + " exists");
                std::size_t op = add_op(MigrationOpKind::rename_table, r.to, r.from, "", false);
                steps_.push_back({{op}, {}, {"ALTER TABLE " + d_.quote(r.from) + " RENAME TO " + d_.quote(r.to)}});
                auto node = db_.extract(r.from);
                node.key() = r.to;
                node.mapped().name = r.to;
                db_.insert(std::move(node));
                if (auto tr = triggers_.find(r.from); tr != triggers_.end()) {
                    triggers_[r.to] = tr->second;
                    triggers_.erase(r.from);
                }
                for (auto& [n, rt] : db_)
                    for (auto& fk : rt.foreign_keys)
                        if (fk.referred_table == r.from) fk.referred_table = r.to;
            } else {
                auto it = db_.find(r.table);
                if (it == db_.end()) continue;
                auto& cols = it->second.columns;
                auto has = [&](const std::string& n) {
                    return std::any_of(cols.begin(), cols.end(), [&](const ReflectedColumn& c) { return c.name == n; });
                };
                if (!has(r.from)) continue;
                if (has(r.to))
                    throw MigrationError("cannot rename column " + r.table + "." + r.from + " to " + r.to + ": " +
                                         r.to + " exists");
                std::size_t op = add_op(MigrationOpKind::rename_column, r.table, r.from, r.to, false);
                steps_.push_back({{op},
                                  {},
                                  {"ALTER TABLE " + d_.quote(r.table) + " RENAME COLUMN " + d_.quote(r.from) + " TO " +
                                   d_.quote(r.to)}});
                for (auto& c : cols)
                    if (c.name == r.from) c.name = r.to;
                for (auto& fk : it->second.foreign_keys)
                    for (auto& c : fk.columns)
                        if (c == r.from) c = r.to;
                for (auto& ix : it->second.indexes)
                    for (auto& c : ix.columns)
                        if (c == r.from) c = r.to;
                for (auto& [n, rt] : db_)
                    for (auto& fk : rt.foreign_keys)
                        if (fk.referred_table == r.table)
                            for (auto& c : fk.referred_columns)
                                if (c == r.from) c = r.to;
            }
        }
    }

    std::string type_of(const TypeEngine& t) const { return upper(d_.type_ddl(t)); }

    void diff_table(const Table& t, const ReflectedTable& rt) {
        const std::string& tn = t.name();
        const std::string qt = d_.quote(tn);
        // This table's changes in order, each with its statements where ALTER TABLE can do them
        // (PostgreSQL), and whether SQLite must rebuild the table for it.
        struct Change {
            Step step;
            bool rebuilds;
        };
        std::vector<Change> changes;
        auto change = [&](MigrationOpKind k, std::string name, std::string detail, bool destructive,
                          bool sqlite_rebuilds, std::vector<std::string> sql) -> Step& {
            std::size_t op = add_op(k, tn, std::move(name), std::move(detail), destructive);
            changes.push_back({{{op}, {}, std::move(sql)}, sqlite_rebuilds && rebuild_});
            return changes.back().step;
        };
        auto quote_cols = [&](const std::vector<std::string>& cols) {
            std::vector<std::string> q;
            for (const auto& n : cols) q.push_back(d_.quote(n));
            return join(q, ", ");
        };
        const std::string alter_column = "ALTER TABLE " + qt + " ALTER COLUMN ";
        std::map<std::string, const ReflectedColumn*> old;
        for (const auto& rc : rt.columns) old[rc.name] = &rc;

        // Columns added and changed.
        for (const auto& cp : t.columns()) {
            const Column& c = *cp;
            const std::string qc = d_.quote(c.name());
            auto it = old.find(c.name());
            if (it == old.end()) {
                // SQLite's ADD COLUMN takes no PRIMARY KEY and no NOT NULL without a default.
                const bool no_default = !c.nullable() && !c.server_default();
                Step& s = change(MigrationOpKind::add_column, c.name(), "", false, no_default || c.primary_key(),
                                 {"ALTER TABLE " + qt + " ADD COLUMN " + column_ddl(c, d_)});
                if (no_default)
                    s.checks.push_back({"SELECT count(*) FROM " + qt,
                                        "cannot add column " + tn + "." + c.name() +
                                            ": it is NOT NULL without a server default and " + tn + " holds rows"});
                continue;
            }
            const ReflectedColumn& rc = *it->second;
            const std::string want_type = type_of(c.type()), have_type = type_of(rc.type);
            if (want_type != have_type) {
                const bool loses = !widens(rc.type, c.type());
                const std::string ddl = d_.type_ddl(c.type());
                change(MigrationOpKind::alter_type, c.name(),
                       have_type + " to " + want_type + (loses ? " (narrowing: values may be lost)" : ""), loses, true,
                       {alter_column + qc + " TYPE " + ddl + " USING " + qc + "::" + ddl});
            }
            // A primary key column is NOT NULL whatever the database says of it.
            if (!c.primary_key() && c.nullable() != rc.nullable) {
                Step& s = change(MigrationOpKind::alter_nullable, c.name(), c.nullable() ? "NULL allowed" : "NOT NULL",
                                 false, true, {alter_column + qc + (c.nullable() ? " DROP NOT NULL" : " SET NOT NULL")});
                if (!c.nullable())
                    s.checks.push_back({"SELECT count(*) FROM " + qt + " WHERE " + qc + " IS NULL",
                                        "cannot make " + tn + "." + c.name() + " NOT NULL: it holds NULLs"});
            }
            const std::string want_def = column_default_sql(c);
            const std::string have_def = rc.default_sql ? norm_default(*rc.default_sql) : "";
            if (norm_default(want_def) != have_def)
                change(MigrationOpKind::alter_default, c.name(), want_def.empty() ? "none" : want_def, false, true,
                       {alter_column + qc + (want_def.empty() ? " DROP DEFAULT" : " SET DEFAULT " + want_def)});
        }
        // The primary key.
        std::vector<std::string> want_pk, have_pk;
        for (const Column* c : t.primary_key()) want_pk.push_back(c->name());
        std::vector<const ReflectedColumn*> pkc;
        for (const auto& rc : rt.columns)
            if (rc.primary_key_position > 0) pkc.push_back(&rc);
        std::sort(pkc.begin(), pkc.end(), [](auto* a, auto* b) { return a->primary_key_position < b->primary_key_position; });
        for (auto* rc : pkc) have_pk.push_back(rc->name);
        if (want_pk != have_pk) {
            std::vector<std::string> sql;
            if (!have_pk.empty()) sql.push_back("ALTER TABLE " + qt + " DROP CONSTRAINT " + d_.quote(tn + "_pkey"));
            if (!want_pk.empty()) sql.push_back("ALTER TABLE " + qt + " ADD PRIMARY KEY (" + quote_cols(want_pk) + ")");
            change(MigrationOpKind::alter_primary_key, "", "(" + join(want_pk, ", ") + ")", false, true, std::move(sql));
        }

        // Constraints and indexes: the old ones go first, the new ones come after the columns.
        std::vector<IndexDef> want_ix = wanted_indexes(t);
        std::vector<const ReflectedIndex*> have_ix, have_uq;
        for (const auto& ix : rt.indexes) (ix.from_constraint ? have_uq : have_ix).push_back(&ix);
        auto same_index = [](const IndexDef& w, const ReflectedIndex& h) {
            return w.name == h.name && w.columns == h.columns && w.unique == h.unique;
        };
        for (const ReflectedIndex* ix : have_ix)
            if (std::none_of(want_ix.begin(), want_ix.end(), [&](const IndexDef& w) { return same_index(w, *ix); }))
                change(MigrationOpKind::drop_index, ix->name, "", false, false, {"DROP INDEX " + d_.quote(ix->name)});
        std::vector<std::vector<std::string>> want_uq = wanted_uniques(t);
        for (const ReflectedIndex* ix : have_uq)
            if (std::find(want_uq.begin(), want_uq.end(), ix->columns) == want_uq.end())
                change(MigrationOpKind::drop_unique, ix->name, "(" + join(ix->columns, ", ") + ")", false, true,
                       {"ALTER TABLE " + qt + " DROP CONSTRAINT " + d_.quote(ix->name)});
        std::vector<FkDef> want_fk = wanted_fks(t), have_fk;
        for (const auto& fk : rt.foreign_keys)
            have_fk.push_back({fk.name, fk.columns, fk.referred_table, fk.referred_columns, norm_action(fk.ondelete),
                               norm_action(fk.onupdate)});
        for (const FkDef& h : have_fk)
            if (std::none_of(want_fk.begin(), want_fk.end(), [&](const FkDef& w) { return w.same(h); }))
                change(MigrationOpKind::drop_foreign_key, h.name, "(" + join(h.columns, ", ") + ") -> " + h.target, false,
                       true, {"ALTER TABLE " + qt + " DROP CONSTRAINT " + d_.quote(h.name)});
        for (const IndexDef& w : want_ix)
            if (std::none_of(have_ix.begin(), have_ix.end(), [&](const ReflectedIndex* h) { return same_index(w, *h); }))
                change(MigrationOpKind::add_index, w.name, "(" + join(w.columns, ", ") + ")", false, false,
                       {std::string("CREATE ") + (w.unique ? "UNIQUE " : "") + "INDEX " + d_.quote(w.name) + " ON " + qt +
                        " (" + quote_cols(w.columns) + ")"});
        for (const auto& w : want_uq)
            if (std::none_of(have_uq.begin(), have_uq.end(), [&](const ReflectedIndex* h) { return h->columns == w; }))
                change(MigrationOpKind::add_unique, "", "(" + join(w, ", ") + ")", false, true,
                       {"ALTER TABLE " + qt + " ADD UNIQUE (" + quote_cols(w) + ")"});
        for (const FkDef& w : want_fk) {
            if (std::any_of(have_fk.begin(), have_fk.end(), [&](const FkDef& h) { return w.same(h); })) continue;
            ForeignKeyConstraint fk{w.columns, {}, {w.ondelete, w.onupdate, w.name}};
            for (const auto& c : w.target_columns) fk.targets.push_back(w.target + "." + c);
            change(MigrationOpKind::add_foreign_key, w.name, "(" + join(w.columns, ", ") + ") -> " + w.target, false, true,
                   {"ALTER TABLE " + qt + " ADD " + foreign_key_sql(fk, d_)});
        }
        // Columns dropped, last.
        for (const auto& rc : rt.columns)
            if (!t.find_column(rc.name))
                change(MigrationOpKind::drop_column, rc.name, "", true, true,
                       {"ALTER TABLE " + qt + " DROP COLUMN " + d_.quote(rc.name)});
        if (changes.empty()) return;

        const bool needs_rebuild =
            std::any_of(changes.begin(), changes.end(), [](const Change& c) { return c.rebuilds; });
        if (!needs_rebuild) {  // ALTER TABLE does each op, with the checks that guard it
            for (auto& c : changes)
                if (!deferred(c.step.ops.front())) steps_.push_back(std::move(c.step));
            return;
        }
        // SQLite: the table is rebuilt once for all of its ops.
        std::vector<std::size_t> ops;
        for (const auto& c : changes) ops.push_back(c.step.ops.front());
        if (opts_.safe_only &&
            std::any_of(ops.begin(), ops.end(), [&](std::size_t o) { return plan_.ops_[o].destructive(); })) {
            // The rebuild waits for the loss it carries; what ALTER TABLE can do is done now
            // (a column a step may fill, an index), the rest waits with it.
            for (auto& c : changes) {
                if (!c.rebuilds) steps_.push_back(std::move(c.step));
                else dropped_ops_.insert(c.step.ops.front());
            }
            return;
        }
        for (std::size_t o : ops) plan_.ops_[o].batch_ = true;
        Step s{ops, {}, {}};
        for (const auto& c : changes) s.checks.insert(s.checks.end(), c.step.checks.begin(), c.step.checks.end());
        const std::string tmp = "_athanor_tmp_" + tn;
        std::string create = trim(create_table_sql(t, d_));
        const std::string head = "CREATE TABLE " + qt + " (";
        create = "CREATE TABLE " + d_.quote(tmp) + " (" + create.substr(head.size());
        std::vector<std::string> into, from;
        for (const auto& cp : t.columns()) {
            auto it = old.find(cp->name());
            if (it == old.end()) continue;
            into.push_back(d_.quote(cp->name()));
            if (type_of(cp->type()) != type_of(it->second->type))
                from.push_back("CAST(" + d_.quote(cp->name()) + " AS " + d_.type_ddl(cp->type()) + ")");
            else
                from.push_back(d_.quote(cp->name()));
        }
        s.sql.push_back("PRAGMA legacy_alter_table=ON");
        s.sql.push_back(create);
        if (!into.empty())
            s.sql.push_back("INSERT INTO " + d_.quote(tmp) + " (" + join(into, ", ") + ") SELECT " + join(from, ", ") +
                            " FROM " + qt);
        s.sql.push_back("DROP TABLE " + qt);
        s.sql.push_back("ALTER TABLE " + d_.quote(tmp) + " RENAME TO " + qt);
        s.sql.push_back("PRAGMA legacy_alter_table=OFF");
        for (const auto& ix : create_index_sql(t, d_)) s.sql.push_back(ix);
        if (auto tr = triggers_.find(tn); tr != triggers_.end())
            for (const auto& sql : tr->second) s.sql.push_back(sql);
        steps_.push_back(std::move(s));
        plan_.rebuilds_ = true;
    }

    void finish() {
        // Ops left out by safe_only go to deferred(); the steps' op indexes follow the move.
        std::vector<std::size_t> remap(plan_.ops_.size(), 0);
        std::vector<MigrationOp> kept;
        for (std::size_t i = 0; i < plan_.ops_.size(); ++i) {
            if (dropped_ops_.count(i)) {
                plan_.deferred_.push_back(plan_.ops_[i]);
                continue;
            }
            remap[i] = kept.size();
            kept.push_back(plan_.ops_[i]);
        }
        plan_.ops_ = std::move(kept);
        for (auto& s : steps_) {
            for (auto& o : s.ops) {
                o = remap[o];
                plan_.ops_[o].sql_ = s.sql;
            }
            plan_.steps_.push_back(std::move(s));
        }
    }

    SchemaConnection& conn_;
    const Dialect& d_;
    const MetaData& md_;
    const MigrationOptions& opts_;
    const bool rebuild_;  // SQLite: no ALTER COLUMN / constraints, tables are rebuilt
    std::map<std::string, ReflectedTable> db_;
    std::map<std::string, std::vector<std::string>> triggers_;
    std::vector<Step> steps_;
    std::set<std::size_t> dropped_ops_;
    MigrationPlan plan_;
};

std::string MigrationOp::describe() const {
    const std::string col = table_ + "." + name_;
    switch (kind_) {
        case MigrationOpKind::rename_table: return "rename table " + name_ + " to " + table_;
        case MigrationOpKind::rename_column: return "rename column " + col + " to " + detail_;
        case MigrationOpKind::add_table: return "add table " + table_;
        case MigrationOpKind::drop_table: return "drop table " + table_ + " (its rows are lost)";
        case MigrationOpKind::add_column: return "add column " + col;
        case MigrationOpKind::drop_column: return "drop column " + col + " (its values are lost)";
        case MigrationOpKind::alter_type: return "change type of " + col + " from " + detail_;
        case MigrationOpKind::alter_nullable: return "make " + col + " " + detail_;
        case MigrationOpKind::alter_default: return "change server default of " + col + " to " + detail_;
        case MigrationOpKind::alter_primary_key: return "change primary key of " + table_ + " to " + detail_;
        case MigrationOpKind::add_index: return "add index " + name_ + " on " + table_ + " " + detail_;
        case MigrationOpKind::drop_index: return "drop index " + name_ + " on " + table_;
        case MigrationOpKind::add_unique: return "add unique constraint on " + table_ + " " + detail_;
        case MigrationOpKind::drop_unique: return "drop unique constraint on " + table_ + " " + detail_;
        case MigrationOpKind::add_foreign_key: return "add foreign key on " + table_ + " " + detail_;
        case MigrationOpKind::drop_foreign_key: return "drop foreign key on " + table_ + " " + detail_;
    }
    return "?";
}

bool MigrationPlan::destructive() const noexcept {
    return std::any_of(ops_.begin(), ops_.end(), [](const MigrationOp& o) { return o.destructive(); });
}

std::vector<std::string> MigrationPlan::sql() const {
    std::vector<std::string> out;
    for (const auto& s : steps_) out.insert(out.end(), s.sql.begin(), s.sql.end());
    if (rebuilds_) out.push_back("PRAGMA foreign_key_check");
    return out;
}

std::string MigrationPlan::to_string() const {
    std::string out;
    for (const auto& s : steps_) {
        for (std::size_t o : s.ops)
            out += std::string(ops_[o].destructive() ? "! " : "- ") + ops_[o].describe() +
                   (ops_[o].batch() ? " [table rebuilt]" : "") + "\n";
        for (const auto& q : s.sql) out += "    " + q + ";\n";
    }
    if (rebuilds_) out += "    PRAGMA foreign_key_check;\n";
    for (const auto& d : deferred_) out += "  (deferred) " + d.describe() + "\n";
    return out;
}

void MigrationPlan::apply(Connectable& bind, const ApplyOptions& options) const {
    if (destructive() && !options.allow_data_loss) {
        std::string what;
        for (const auto& o : ops_)
            if (o.destructive()) what += "\n  " + o.describe();
        throw MigrationError("the migration would lose data; nothing was changed. Pass allow_data_loss to "
                             "apply it:" + what);
    }
    if (steps_.empty()) return;
    bind.run_schema_work(
        [&](SchemaConnection& conn) {
            if (conn.dialect().name() != dialect_)
                throw MigrationError("this plan was made for " + dialect_ + ", not " +
                                     std::string(conn.dialect().name()));
            const MigrationOp* current = nullptr;
            try {
                for (const Step& s : steps_) {
                    current = &ops_[s.ops.front()];
                    if (options.on_op)
                        for (std::size_t o : s.ops) options.on_op(ops_[o]);
                    for (const Check& c : s.checks) {
                        auto rows = conn.execute_raw(c.count_sql);
                        if (!rows.empty() && !rows[0].empty() && rows[0][0].as<std::int64_t>() != 0)
                            throw MigrationError(c.message + "; nothing was changed");
                    }
                    for (const auto& q : s.sql) conn.execute_ddl(q);
                }
                current = nullptr;
                if (rebuilds_) {
                    auto bad = conn.execute_raw("PRAGMA foreign_key_check");
                    if (!bad.empty()) {
                        std::string first = bad[0].size() > 2 ? bad[0][0].as<std::string>() + " refers to a missing row of " +
                                                                   bad[0][2].as<std::string>()
                                                             : "a row";
                        throw MigrationError("after the rebuild, " + std::to_string(bad.size()) +
                                             " row(s) break a foreign key (" + first + "); nothing was changed");
                    }
                }
            } catch (const MigrationError&) {
                throw;
            } catch (const Error& e) {
                throw MigrationError(std::string("the migration failed") +
                                     (current ? " at \"" + current->describe() + "\"" : "") + ": " + e.what() +
                                     "; nothing was changed");
            }
        },
        SchemaWorkOptions{rebuilds_});
}

MigrationPlan plan_migration(Connectable& bind, const MetaData& metadata, const MigrationOptions& options) {
    MigrationPlan plan;
    bind.run_schema_work([&](SchemaConnection& conn) { plan = MigrationPlanner(conn, metadata, options).run(); });
    return plan;
}

}  // namespace athanor
