// Statement shapes for the process-wide compile cache (after SQLAlchemy's cache keys): a walk
// writing everything that decides a statement's SQL (kinds, operators, names, types where they
// show, structure) and listing the literal values it skips, so two statements built apart but
// alike compile once.
#include "nodes.hpp"

#include <algorithm>

namespace athanor::detail {

namespace {
void name(std::string& k, std::string_view s) {
    k += std::to_string(s.size());
    k += ':';
    k += s;
}
void type(std::string& k, const TypeEngine& t) {
    k += 't';
    k += std::to_string(static_cast<int>(t.kind())) + "," + std::to_string(t.length()) + "," +
         std::to_string(t.precision()) + "," + std::to_string(t.scale());
}
void list(const std::vector<ColumnElement>& v, ShapeKey& k, char tag) {
    k.key += tag;
    k.key += std::to_string(v.size());
    for (const auto& e : v) shape_expr(e.node(), k);
}
void from(const FromNode& f, ShapeKey& k);

// Aliases and subqueries are told apart by the order they first appear in the statement, so
// one alias used twice and two aliases of a table give different shapes.
void from_ordinal(const FromNode* f, ShapeKey& k) {
    auto it = std::find(k.froms.begin(), k.froms.end(), f);
    std::size_t n = static_cast<std::size_t>(it - k.froms.begin());
    if (it == k.froms.end()) k.froms.push_back(f);
    k.key += '#';
    k.key += std::to_string(n);
}

void from(const FromNode& f, ShapeKey& k) {
    std::string& s = k.key;
    switch (f.kind) {
        case FromKind::table:
            s += 'T';
            name(s, f.table->name());
            break;
        case FromKind::alias:
            s += 'A';
            from_ordinal(&f, k);
            name(s, f.table->name());
            name(s, f.name);
            break;
        case FromKind::join:
            s += f.isouter ? "Jo" : "Ji";
            from(*f.left, k);
            from(*f.right, k);
            shape_expr(*f.onclause, k);
            break;
        case FromKind::subquery:
            s += 'Q';
            from_ordinal(&f, k);
            name(s, f.name);
            for (const auto& c : f.column_names) name(s, c);
            if (f.select) shape_select(*f.select, k);
            else shape_compound(*f.compound, k);
            break;
    }
}

void limit(std::string& k, const std::optional<std::int64_t>& v) {
    k += v ? std::to_string(*v) : std::string("-");
    k += ';';
}
}  // namespace

void shape_name(std::string& k, std::string_view s) { name(k, s); }

void shape_expr(const ExprNode& e, ShapeKey& k) {
    std::string& s = k.key;
    s += '(';
    s += std::to_string(static_cast<int>(e.kind));
    switch (e.kind) {
        case ExprKind::column:
        case ExprKind::subquery_column:
            name(s, e.name);
            if (e.from) from(*e.from, k);
            else if (e.column && e.column->table()) name(s, e.column->table()->name());
            break;
        case ExprKind::bind:
            if (e.has_value) {
                if (std::find(k.literals.begin(), k.literals.end(), &e) != k.literals.end())
                    k.cacheable = false;  // one node in two places: slots could not tell them apart
                k.literals.push_back(&e);
                s += 'L';
            } else {
                s += 'P';
                name(s, e.name);
            }
            break;
        case ExprKind::cast: type(s, e.type); break;
        case ExprKind::in_list:
        case ExprKind::in_select:
        case ExprKind::case_: s += e.negate ? '!' : '='; break;
        default: name(s, e.name); break;
    }
    for (const auto& c : e.children) shape_expr(*c, k);
    if (e.select) shape_select(*e.select, k);
    s += ')';
}

void shape_select(const SelectData& d, ShapeKey& k) {
    k.key += d.distinct ? "SD" : "S";
    if (d.star) k.key += '*';
    list(d.columns, k, 'c');
    k.key += 'f';
    k.key += std::to_string(d.froms.size());
    for (const auto& f : d.froms) from(*f, k);
    list(d.where, k, 'w');
    list(d.group_by, k, 'g');
    list(d.having, k, 'h');
    list(d.order_by, k, 'o');
    limit(k.key, d.limit);
    limit(k.key, d.offset);
}

void shape_compound(const CompoundData& c, ShapeKey& k) {
    name(k.key, c.keyword);
    k.key += std::to_string(c.selects.size());
    for (const auto& s : c.selects) shape_select(s.data(), k);
    list(c.order_by, k, 'o');
    limit(k.key, c.limit);
    limit(k.key, c.offset);
}

}  // namespace athanor::detail
