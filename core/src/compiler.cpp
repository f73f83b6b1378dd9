// The SQL compiler: turns statement and expression nodes into SQL text for a Dialect, with
// SQLAlchemy's spacing, labeling and parenthesization so the text matches what it emits.
#include "nodes.hpp"
#include "sql_guard.hpp"

#include <athanor/core/dialect.hpp>
#include <athanor/core/exc.hpp>
#include <athanor/core/selectable.hpp>

#include <algorithm>
#include <functional>
#include <map>

namespace athanor {

using namespace detail;

namespace {

bool associative(const std::string& op) {
    return op == "AND" || op == "OR" || op == "+" || op == "*" || op == "||";
}

bool has_prec(const ExprNode& e) {
    return e.kind == ExprKind::binary || e.kind == ExprKind::clause_list ||
           (e.kind == ExprKind::unary && e.prefix) || e.kind == ExprKind::in_list ||
           e.kind == ExprKind::in_select || e.kind == ExprKind::between;
}

std::string join_strings(const std::vector<std::string>& parts, const char* sep) {
    std::string out;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i) out += sep;
        out += parts[i];
    }
    return out;
}

class SQLCompiler {
public:
    SQLCompiler(const Dialect& d, Compiled& out) : d_(d), out_(out) {}

    // ---- naming
    std::string anon(const void* key, const std::string& base) {
        auto it = anon_.find(key);
        if (it != anon_.end()) return it->second;
        std::string n = base + "_" + std::to_string(++counters_[base]);
        anon_.emplace(key, n);
        return n;
    }

    std::string from_name(const FromNode& f) {
        switch (f.kind) {
            case FromKind::table: return f.table->name();
            case FromKind::alias:
            case FromKind::subquery: return f.name.empty() ? anon(&f, "anon") : f.name;
            case FromKind::join: break;
        }
        throw CompileError("a join has no name");
    }

    // ---- binds
    std::string bind(BindSlot slot) {
        std::string p = d_.bind_placeholder(out_.binds.size());
        if (slot.source == BindSlot::Source::column_default) ++out_.default_slots;
        out_.binds.push_back(std::move(slot));
        return p;
    }
    std::string bind_literal(const Value& v) {
        BindSlot s;
        s.value = v;
        return bind(std::move(s));
    }

    // ---- expressions
    std::string sub(const ExprNode& child, const ExprNode& parent) {
        std::string s = expr(child);
        if (has_prec(child) && has_prec(parent)) {
            bool wrap = child.prec < parent.prec ||
                        (child.prec == parent.prec &&
                         !(child.name == parent.name && associative(parent.name)) &&
                         parent.kind != ExprKind::clause_list);
            if (child.prec == parent.prec && parent.kind == ExprKind::clause_list &&
                child.kind == ExprKind::clause_list && child.name != parent.name)
                wrap = true;
            if (wrap) return "(" + s + ")";
        }
        return s;
    }

    std::string column(const ExprNode& e) {
        FromPtr f = from_of(e);
        std::string q = f ? d_.quote(from_name(*f)) + "." : std::string();
        return q + d_.quote(e.name);
    }

    std::string where_clause(const std::vector<ColumnElement>& clauses) {
        ColumnElement all = clauses.size() == 1 ? clauses.front() : and_(clauses);
        const ExprNode& n = all.node();
        if (n.kind == ExprKind::true_) return d_.true_literal() == "1" ? "1 = 1" : d_.true_literal();
        if (n.kind == ExprKind::false_) return d_.false_literal() == "0" ? "0 = 1" : d_.false_literal();
        return expr(n);
    }

    std::string expr(const ExprNode& e) {
        switch (e.kind) {
            case ExprKind::column:
            case ExprKind::subquery_column: return column(e);
            case ExprKind::bind: {
                BindSlot s;
                if (e.has_value) {
                    s.value = e.value;
                    s.origin = &e;
                } else {
                    s.source = BindSlot::Source::param;
                    s.key = e.name;
                }
                return bind(std::move(s));
            }
            case ExprKind::null: return "NULL";
            case ExprKind::true_: return d_.true_literal();
            case ExprKind::false_: return d_.false_literal();
            case ExprKind::literal_column: return e.name;
            case ExprKind::binary: {
                const ExprNode& l = *e.children[0];
                const ExprNode& r = *e.children[1];
                // Operands are compiled in textual order: bind slots are numbered as they come.
                if (e.name == "ILIKE" && !d_.supports_ilike()) {
                    std::string ls = expr(l);
                    std::string rs = expr(r);
                    return "lower(" + ls + ") LIKE lower(" + rs + ")";
                }
                std::string ls = sub(l, e);
                std::string rs = sub(r, e);
                if (!d_.supports_is_distinct_from()) {
                    if (e.name == "IS DISTINCT FROM") return ls + " IS NOT " + rs;
                    if (e.name == "IS NOT DISTINCT FROM") return ls + " IS " + rs;
                }
                return ls + " " + e.name + " " + rs;
            }
            case ExprKind::unary: {
                const ExprNode& c = *e.children[0];
                if (e.prefix) {
                    std::string cs = sub(c, e);
                    if (e.name == "-") return "-" + cs;
                    if (e.name == "NOT" && (c.kind == ExprKind::exists || c.kind == ExprKind::scalar_subquery))
                        return "NOT (" + cs + ")";
                    return e.name + " " + cs;
                }
                return expr(c) + " " + e.name;
            }
            case ExprKind::clause_list: {
                std::vector<std::string> parts;
                for (const auto& c : e.children) parts.push_back(sub(*c, e));
                return join_strings(parts, (" " + e.name + " ").c_str());
            }
            case ExprKind::function: {
                if (e.name == "now" && e.children.empty()) return "CURRENT_TIMESTAMP";
                if (e.name == "count" && e.children.empty()) return "count(*)";
                std::vector<std::string> args;
                for (const auto& c : e.children) args.push_back(expr(*c));
                return e.name + "(" + join_strings(args, ", ") + ")";
            }
            case ExprKind::label: return expr(*e.children[0]);
            case ExprKind::cast:
                return "CAST(" + expr(*e.children[0]) + " AS " + d_.type_ddl(e.type) + ")";
            case ExprKind::case_: {
                std::string s = "CASE";
                bool has_else = e.negate;
                std::size_t pairs = (e.children.size() - (has_else ? 1 : 0)) / 2;
                for (std::size_t i = 0; i < pairs; ++i) {
                    const ExprNode& w = *e.children[2 * i];
                    std::string ws = expr(w);
                    if (has_prec(w)) ws = "(" + ws + ")";
                    s += " WHEN " + ws + " THEN " + expr(*e.children[2 * i + 1]);
                }
                if (has_else) s += " ELSE " + expr(*e.children.back());
                return s + " END";
            }
            case ExprKind::in_list: {
                if (e.children.size() == 1) return e.negate ? "1 = 1" : "1 != 1";
                std::string s = sub(*e.children[0], e) + (e.negate ? " NOT IN (" : " IN (");
                for (std::size_t i = 1; i < e.children.size(); ++i) {
                    if (i > 1) s += ", ";
                    s += expr(*e.children[i]);
                }
                s += ")";
                return e.negate ? "(" + s + ")" : s;
            }
            case ExprKind::in_select: {
                std::string s = sub(*e.children[0], e);
                s += e.negate ? " NOT IN (" : " IN (";
                s += nested_select(*e.select) + ")";
                return e.negate ? "(" + s + ")" : s;
            }
            case ExprKind::between:
            {
                std::string a = sub(*e.children[0], e);
                std::string lo = sub(*e.children[1], e);
                std::string hi = sub(*e.children[2], e);
                return a + " BETWEEN " + lo + " AND " + hi;
            }
            case ExprKind::scalar_subquery: return "(" + nested_select(*e.select) + ")";
            case ExprKind::exists: return "EXISTS (" + nested_select(*e.select) + ")";
            case ExprKind::grouping: return "(" + expr(*e.children[0]) + ")";
        }
        throw CompileError("unknown expression node");
    }

    // ---- FROM
    std::string from(const FromNode& f) {
        switch (f.kind) {
            case FromKind::table: return d_.quote(f.table->name());
            case FromKind::alias: return d_.quote(f.table->name()) + " AS " + d_.quote(from_name(f));
            case FromKind::join: {
                std::string s = from(*f.left);
                s += f.isouter ? " LEFT OUTER JOIN " : " JOIN ";
                s += from(*f.right);
                return s + " ON " + expr(*f.onclause);
            }
            case FromKind::subquery: {
                std::string name = from_name(f);
                std::string inner = f.select ? select(*f.select, &f.column_names)
                                             : compound(*f.compound);
                return "(" + inner + ") AS " + d_.quote(name);
            }
        }
        throw CompileError("unknown FROM node");
    }

    // ---- SELECT
    std::string nested_select(const SelectData& s) { return select(s, nullptr, true); }

    std::vector<FromPtr> froms_of(const SelectData& s) {
        std::vector<FromPtr> out = s.froms;
        std::vector<FromPtr> leaves;
        for (const auto& f : s.froms) leaf_froms(f, leaves);
        std::vector<FromPtr> implicit;
        for (const auto& c : s.columns) collect_froms(c.node(), implicit);
        for (const auto& c : s.where) collect_froms(c.node(), implicit);
        for (const auto& c : s.having) collect_froms(c.node(), implicit);
        for (const auto& f : implicit) {
            bool covered = std::find(out.begin(), out.end(), f) != out.end() ||
                           std::find(leaves.begin(), leaves.end(), f) != leaves.end();
            if (!covered) out.push_back(f);
        }
        return out;
    }

    std::string select(const SelectData& s, const std::vector<std::string>* forced_labels,
                       bool nested = false) {
        std::vector<FromPtr> froms = froms_of(s);
        if (nested && !enclosing_.empty()) {
            // Correlate: tables of the enclosing statement are not repeated in the subquery,
            // unless that would leave it without a FROM.
            std::vector<FromPtr> kept;
            for (const auto& f : froms)
                if (std::find(enclosing_.begin(), enclosing_.end(), f) == enclosing_.end())
                    kept.push_back(f);
            if (!kept.empty()) froms = std::move(kept);
        }
        std::size_t saved = enclosing_.size();
        for (const auto& f : froms) {
            enclosing_.push_back(f);
            leaf_froms(f, enclosing_);
        }
        bool top = out_.keys.empty() && !nested && !forced_labels && depth_ == 0;
        ++depth_;

        std::string sql = "SELECT ";
        if (s.distinct) sql += "DISTINCT ";
        std::vector<std::string> cols;
        std::vector<std::string> used;
        std::vector<std::string> keys;
        if (s.columns.empty()) cols.push_back("*");
        for (std::size_t i = 0; i < s.columns.size(); ++i) {
            const ExprNode& n = s.columns[i].node();
            std::string text = expr(n);
            std::string key;
            bool must_label = forced_labels != nullptr;
            if (n.kind == ExprKind::label) {
                key = n.name;
                must_label = true;
            } else if (n.kind == ExprKind::column || n.kind == ExprKind::subquery_column) {
                key = n.name;
            } else if (n.kind == ExprKind::cast && n.children[0]->kind == ExprKind::column) {
                key = n.children[0]->name;
                must_label = true;
            } else if (n.kind == ExprKind::function) {
                key = anon(&n, n.name.substr(n.name.rfind('.') + 1));  // main.fn -> fn_1
                must_label = true;
            } else {
                key = anon(&n, "anon");
                must_label = true;
            }
            if (forced_labels && i < forced_labels->size()) key = (*forced_labels)[i];
            if (std::find(used.begin(), used.end(), key) != used.end()) {
                key = anon(&s.columns[i], key);
                must_label = true;
            }
            used.push_back(key);
            keys.push_back(key);
            cols.push_back(must_label ? text + " AS " + d_.quote(key) : text);
        }
        sql += join_strings(cols, ", ");
        if (!froms.empty()) {
            std::vector<std::string> fs;
            for (const auto& f : froms) fs.push_back(from(*f));
            sql += " \nFROM " + join_strings(fs, ", ");
        }
        if (!s.where.empty()) sql += " \nWHERE " + where_clause(s.where);
        if (!s.group_by.empty()) {
            std::vector<std::string> g;
            for (const auto& c : s.group_by) g.push_back(expr(c.node()));
            sql += " GROUP BY " + join_strings(g, ", ");
        }
        if (!s.having.empty()) sql += " \nHAVING " + where_clause(s.having);
        if (!s.order_by.empty()) sql += " ORDER BY " + order_by(s.order_by, &s);
        sql += limit_offset(s.limit, s.offset);

        --depth_;
        enclosing_.resize(saved);
        if (top) out_.keys = std::move(keys);
        return sql;
    }

    std::string order_by(const std::vector<ColumnElement>& clauses, const SelectData* s) {
        std::vector<std::string> parts;
        for (const auto& c : clauses) {
            const ExprNode* n = &c.node();
            std::string suffix;
            while (n->kind == ExprKind::unary && !n->prefix) {
                suffix = " " + n->name + suffix;
                n = n->children[0].get();
            }
            std::string text;
            if (n->kind == ExprKind::label) {
                text = d_.quote(n->name);  // a label of the SELECT list is referred to by name
            } else if (!s) {
                // compound: refer to result columns by name
                if (n->kind == ExprKind::column || n->kind == ExprKind::subquery_column)
                    text = d_.quote(n->name);
                else
                    text = expr(*n);
            } else {
                text = expr(*n);
            }
            parts.push_back(text + suffix);
        }
        return join_strings(parts, ", ");
    }

    std::string limit_offset(const std::optional<std::int64_t>& limit,
                             const std::optional<std::int64_t>& offset) {
        if (!limit && !offset) return "";
        std::string s;
        if (d_.limit_offset_together()) {
            s = "\n LIMIT " + bind_literal(Value(limit ? *limit : -1));
            s += " OFFSET " + bind_literal(Value(offset ? *offset : 0));
            return s;
        }
        if (d_.limit_all()) {  // PostgreSQL's spelling, as SQLAlchemy's limit_clause writes it
            if (limit) s += " \n LIMIT " + bind_literal(Value(*limit));
            if (offset) s += (limit ? " OFFSET " : "\n LIMIT ALL OFFSET ") + bind_literal(Value(*offset));
            return s;
        }
        if (limit) s += "\n LIMIT " + bind_literal(Value(*limit));
        if (offset) s += (limit ? " OFFSET " : "\n OFFSET ") + bind_literal(Value(*offset));
        return s;
    }

    std::string compound(const CompoundData& c) {
        std::vector<std::string> parts;
        bool top = depth_ == 0;
        ++depth_;
        for (std::size_t i = 0; i < c.selects.size(); ++i) {
            const SelectData& s = c.selects[i].data();
            parts.push_back(select(s, nullptr));
            if (i == 0 && top) {
                // Result keys are those of the first SELECT.
                std::vector<std::string> ks;
                for (const auto& col : s.columns) ks.push_back(col.key());
                first_keys_ = ks;
            }
        }
        --depth_;
        std::string sql = join_strings(parts, (" " + c.keyword + " ").c_str());
        if (!c.order_by.empty()) sql += " ORDER BY " + order_by(c.order_by, nullptr);
        sql += limit_offset(c.limit, c.offset);
        if (top) out_.keys = first_keys_;
        return sql;
    }

    // ---- DML
    std::string returning(const std::vector<ColumnElement>& cols) {
        if (cols.empty()) return "";
        if (!d_.supports_returning())
            throw CompileError("RETURNING is not supported by the " + std::string(d_.name()) +
                               " dialect");
        std::vector<std::string> parts;
        for (const auto& c : cols) {
            const ExprNode& n = c.node();
            if (n.kind == ExprKind::column) {
                parts.push_back(d_.returning_qualified() ? column(n) : d_.quote(n.name));
                out_.keys.push_back(n.name);
            } else {
                std::string key = n.kind == ExprKind::label ? n.name : anon(&n, "anon");
                parts.push_back(expr(n) + " AS " + d_.quote(key));
                out_.keys.push_back(key);
            }
        }
        out_.returning = true;
        return " RETURNING " + join_strings(parts, ", ");
    }

    std::string set_value(const ExprNode& n, const Column& col) {
        if (n.kind == ExprKind::bind && n.has_value) {
            BindSlot s;
            s.value = n.value;
            s.origin = &n;
            (void)col;
            return bind(std::move(s));
        }
        std::string s = expr(n);
        if (has_prec(n)) s = "(" + s + ")";
        return s;
    }

    std::string insert(const InsertData& ins, const Params* params) {
        const Table& t = *ins.table;
        out_.kind = Compiled::Kind::insert;
        out_.table = &t;
        std::string sql = "INSERT INTO " + d_.quote(t.name());
        if (!ins.multi.empty()) {
            std::vector<const Column*> cols;
            for (const auto& col : t.columns())
                if (ins.multi.front().contains(col->name())) cols.push_back(col.get());
            check_unconsumed(t, ins.multi.front());
            std::vector<std::string> names, rows;
            for (const Column* c : cols) names.push_back(d_.quote(c->name()));
            for (std::size_t r = 0; r < ins.multi.size(); ++r) {
                const Params& row = ins.multi[r];
                if (row.size() != cols.size())
                    throw ArgumentError("insert().values(): row " + std::to_string(r) +
                                        " has different keys than row 0");
                std::vector<std::string> ph;
                for (const Column* c : cols) {
                    const Value* v = row.find(c->name());
                    if (!v)
                        throw ArgumentError("insert().values(): row " + std::to_string(r) +
                                            " has no value for '" + c->name() + "'");
                    ph.push_back(bind_literal(*v));
                }
                rows.push_back("(" + join_strings(ph, ", ") + ")");
            }
            sql += " (" + join_strings(names, ", ") + ") VALUES " + join_strings(rows, ", ");
            return sql + returning(ins.returning);
        }
        if (params) check_unconsumed(t, *params);
        std::vector<std::string> names, values;
        for (const auto& colp : t.columns()) {
            const Column& col = *colp;
            const ColumnElement* given = nullptr;
            for (const auto& [k, v] : ins.values)
                if (k == col.name()) given = &v;
            if (given) {
                names.push_back(d_.quote(col.name()));
                std::size_t before = out_.binds.size();
                values.push_back(set_value(given->node(), col));
                // Name a lone literal after its column (inserted_primary_key reads it back).
                if (out_.binds.size() == before + 1) out_.binds.back().key = col.name();
            } else if (params && params->contains(col.name())) {
                names.push_back(d_.quote(col.name()));
                BindSlot s;
                s.source = BindSlot::Source::param;
                s.key = col.name();
                values.push_back(bind(std::move(s)));
            } else if (col.has_default()) {
                names.push_back(d_.quote(col.name()));
                BindSlot s;
                s.source = BindSlot::Source::column_default;
                s.key = col.name();
                s.column = &col;
                values.push_back(bind(std::move(s)));
            }
        }
        if (names.empty()) sql += " DEFAULT VALUES";
        else sql += " (" + join_strings(names, ", ") + ") VALUES (" + join_strings(values, ", ") + ")";
        sql += returning(ins.returning);
        const Column* ai = t.autoincrement_column();
        if (ai && d_.implicit_returning() && std::find(names.begin(), names.end(), d_.quote(ai->name())) == names.end()) {
            // The new key comes back in the same round trip (lastrowid, inserted_primary_key).
            for (std::size_t i = 0; i < ins.returning.size(); ++i) {
                const ExprNode& n = ins.returning[i].node();
                if (n.kind == ExprKind::column && n.column == ai) out_.lastrowid_column = static_cast<int>(i);
            }
            if (out_.lastrowid_column < 0) {
                if (ins.returning.empty()) out_.sql_without_keys = sql;
                std::string col = d_.returning_qualified() ? d_.quote(t.name()) + "." + d_.quote(ai->name())
                                                            : d_.quote(ai->name());
                sql += ins.returning.empty() ? " RETURNING " + col : ", " + col;
                out_.lastrowid_column = static_cast<int>(ins.returning.size());
            }
        }
        return sql;
    }

    void check_unconsumed(const Table& t, const Params& params) {
        std::vector<std::string> bad;
        for (const auto& [k, v] : params)
            if (!t.find_column(k)) bad.push_back(k);
        if (!bad.empty())
            throw CompileError("Unconsumed column names: " + join_strings(bad, ", ") +
                               " (table '" + t.name() + "')");
    }

    std::string update(const UpdateData& up, const Params* params) {
        const Table& t = *up.table;
        out_.kind = Compiled::Kind::update;
        out_.table = &t;
        // Names used by bindparam() in WHERE are not SET targets.
        std::vector<std::string> where_binds;
        std::function<void(const ExprNode&)> scan = [&](const ExprNode& n) {
            if (n.kind == ExprKind::bind && !n.has_value) where_binds.push_back(n.name);
            for (const auto& c : n.children) scan(*c);
        };
        for (const auto& w : up.where) scan(w.node());
        std::vector<std::string> sets;
        for (const auto& colp : t.columns()) {
            const Column& col = *colp;
            const ColumnElement* given = nullptr;
            for (const auto& [k, v] : up.values)
                if (k == col.name()) given = &v;
            if (given) {
                sets.push_back(d_.quote(col.name()) + "=" + set_value(given->node(), col));
            } else if (params && params->contains(col.name()) &&
                       std::find(where_binds.begin(), where_binds.end(), col.name()) == where_binds.end()) {
                BindSlot s;
                s.source = BindSlot::Source::param;
                s.key = col.name();
                sets.push_back(d_.quote(col.name()) + "=" + bind(std::move(s)));
            }
        }
        if (sets.empty())
            throw CompileError("UPDATE of table '" + t.name() + "' has no values to SET");
        std::string sql = "UPDATE " + d_.quote(t.name()) + " SET " + join_strings(sets, ", ");
        if (!up.where.empty()) {
            enclosing_.push_back(t.from_node());
            sql += " WHERE " + where_clause(up.where);
            enclosing_.pop_back();
        }
        return sql + returning(up.returning);
    }

    std::string delete_(const DeleteData& del) {
        const Table& t = *del.table;
        out_.kind = Compiled::Kind::delete_;
        out_.table = &t;
        std::string sql = "DELETE FROM " + d_.quote(t.name());
        if (!del.where.empty()) {
            enclosing_.push_back(t.from_node());
            sql += " WHERE " + where_clause(del.where);
            enclosing_.pop_back();
        }
        return sql + returning(del.returning);
    }

private:
    const Dialect& d_;
    Compiled& out_;
    std::map<const void*, std::string> anon_;
    std::map<std::string, int> counters_;
    std::vector<FromPtr> enclosing_;
    std::vector<std::string> first_keys_;
    int depth_ = 0;
};

}  // namespace

std::shared_ptr<Compiled> Select::do_compile(const Dialect& dialect, const Params*) const {
    auto c = std::make_shared<Compiled>();
    c->kind = Compiled::Kind::select;
    SQLCompiler comp(dialect, *c);
    c->sql = comp.select(*data_, nullptr);
    return c;
}

std::shared_ptr<Compiled> CompoundSelect::do_compile(const Dialect& dialect, const Params*) const {
    auto c = std::make_shared<Compiled>();
    c->kind = Compiled::Kind::select;
    SQLCompiler comp(dialect, *c);
    c->sql = comp.compound(*data_);
    return c;
}

std::shared_ptr<Compiled> Insert::do_compile(const Dialect& dialect, const Params* params) const {
    auto c = std::make_shared<Compiled>();
    SQLCompiler comp(dialect, *c);
    c->sql = comp.insert(*data_, params);
    return c;
}

std::shared_ptr<Compiled> Update::do_compile(const Dialect& dialect, const Params* params) const {
    auto c = std::make_shared<Compiled>();
    SQLCompiler comp(dialect, *c);
    c->sql = comp.update(*data_, params);
    return c;
}

std::shared_ptr<Compiled> Delete::do_compile(const Dialect& dialect, const Params*) const {
    auto c = std::make_shared<Compiled>();
    SQLCompiler comp(dialect, *c);
    c->sql = comp.delete_(*data_);
    return c;
}

// ---- DDL ------------------------------------------------------------------------------------

namespace {
std::string quote_list(const Dialect& d, const std::vector<std::string>& names) {
    std::vector<std::string> q;
    for (const auto& n : names) q.push_back(d.quote(n));
    return join_strings(q, ", ");
}

std::string fk_sql(const Dialect& d, const ForeignKeyConstraint& fk) {
    std::string s;
    if (!fk.options.name.empty()) s += "CONSTRAINT " + d.quote(fk.options.name) + " ";
    s += "FOREIGN KEY(" + quote_list(d, fk.columns) + ") REFERENCES " + d.quote(fk.target_table()) +
         " (" + quote_list(d, fk.target_columns()) + ")";
    if (!fk.options.ondelete.empty()) s += " ON DELETE " + fk.options.ondelete;
    if (!fk.options.onupdate.empty()) s += " ON UPDATE " + fk.options.onupdate;
    return s;
}
}  // namespace

std::string column_default_sql(const Column& c) {
    const auto& sd = c.server_default();
    if (!sd) return {};
    return sd->is_sql ? default_expression_sql(sd->text) : sql_string_literal(sd->text);
}

std::string column_ddl(const Column& c, const Dialect& d) {
    std::string s = d.quote(c.name()) + " " + d.column_type_ddl(c);
    if (c.server_default()) s += " DEFAULT " + column_default_sql(c);
    if (!c.nullable()) s += " NOT NULL";
    return s;
}

std::string foreign_key_sql(const ForeignKeyConstraint& fk, const Dialect& d) { return fk_sql(d, fk); }

std::string create_table_sql(const Table& t, const Dialect& d) {
    std::vector<std::string> lines;
    for (const auto& colp : t.columns()) lines.push_back(column_ddl(*colp, d));
    if (!t.primary_key().empty()) {
        std::vector<std::string> names;
        for (const Column* c : t.primary_key()) names.push_back(c->name());
        std::string s;
        if (!t.primary_key_name().empty()) s = "CONSTRAINT " + d.quote(t.primary_key_name()) + " ";
        lines.push_back(s + "PRIMARY KEY (" + quote_list(d, names) + ")");
    }
    // Table-level constraints in the order given, then the column-level ones.
    for (const auto& uq : t.unique_constraints()) {
        std::string s;
        if (!uq.name.empty()) s = "CONSTRAINT " + d.quote(uq.name) + " ";
        lines.push_back(s + "UNIQUE (" + quote_list(d, uq.columns) + ")");
    }
    // use_alter keys are added by ALTER TABLE after every table exists, where the dialect can.
    const bool later = d.supports_alter();
    for (const auto& fk : t.foreign_key_constraints())
        if (!(later && fk.options.use_alter)) lines.push_back(fk_sql(d, fk));
    for (const auto& colp : t.columns()) {
        const Column& c = *colp;
        if (c.unique() && !c.index()) lines.push_back("UNIQUE (" + d.quote(c.name()) + ")");
        for (const auto& fk : c.foreign_keys())
            if (!(later && fk.options().use_alter))
                lines.push_back(fk_sql(d, ForeignKeyConstraint{{c.name()}, {fk.target()}, fk.options()}));
    }
    return "\nCREATE TABLE " + d.quote(t.name()) + " (\n\t" + join_strings(lines, ", \n\t") +
           "\n)\n\n";
}

std::vector<std::string> create_index_sql(const Table& t, const Dialect& d) {
    std::vector<std::string> out;
    for (const auto& colp : t.columns()) {
        const Column& c = *colp;
        if (!c.index()) continue;
        std::string name = "ix_" + t.name() + "_" + c.name();
        out.push_back(std::string("CREATE ") + (c.unique() ? "UNIQUE " : "") + "INDEX " +
                      d.quote(name) + " ON " + d.quote(t.name()) + " (" + d.quote(c.name()) + ")");
    }
    for (const auto& ix : t.indexes())
        out.push_back(std::string("CREATE ") + (ix.unique ? "UNIQUE " : "") + "INDEX " +
                      d.quote(ix.name) + " ON " + d.quote(t.name()) + " (" +
                      quote_list(d, ix.columns) + ")");
    // SQLAlchemy emits a table's indexes ordered by name.
    std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
        auto name = [](const std::string& s) { return s.substr(s.find("INDEX ") + 6); };
        return name(a) < name(b);
    });
    return out;
}

namespace {
std::vector<ForeignKeyConstraint> use_alter_keys(const Table& t) {
    std::vector<ForeignKeyConstraint> out;
    for (const auto& fk : t.foreign_key_constraints())
        if (fk.options.use_alter) out.push_back(fk);
    for (const auto& colp : t.columns())
        for (const auto& fk : colp->foreign_keys())
            if (fk.options().use_alter) out.push_back(ForeignKeyConstraint{{colp->name()}, {fk.target()}, fk.options()});
    return out;
}
// PostgreSQL's own name for an unnamed foreign key: <table>_<first column>_fkey.
std::string constraint_name(const Table& t, const ForeignKeyConstraint& fk) {
    return fk.options.name.empty() ? t.name() + "_" + fk.columns.front() + "_fkey" : fk.options.name;
}
}  // namespace

std::vector<std::string> add_constraints_sql(const Table& t, const Dialect& d) {
    std::vector<std::string> out;
    if (!d.supports_alter()) return out;
    for (const auto& fk : use_alter_keys(t)) out.push_back("ALTER TABLE " + d.quote(t.name()) + " ADD " + fk_sql(d, fk));
    return out;
}

std::vector<std::string> drop_constraints_sql(const Table& t, const Dialect& d) {
    std::vector<std::string> out;
    if (!d.supports_alter()) return out;
    for (const auto& fk : use_alter_keys(t))
        out.push_back("ALTER TABLE " + d.quote(t.name()) + " DROP CONSTRAINT " + d.quote(constraint_name(t, fk)));
    return out;
}

std::string drop_table_sql(const Table& t, const Dialect& d) {
    return "\nDROP TABLE " + d.quote(t.name());
}

}  // namespace athanor
