// Private: the expression and FROM node structures behind ColumnElement, FromClause and the
// statements, shared by the builders and the compiler. Nodes are immutable once built.
#pragma once

#include <athanor/core/compiled.hpp>
#include <athanor/core/elements.hpp>
#include <athanor/core/schema.hpp>
#include <athanor/core/selectable.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace athanor::detail {

using ExprPtr = std::shared_ptr<const ExprNode>;
using FromPtr = std::shared_ptr<const FromNode>;

enum class ExprKind : std::uint8_t {
    column,           // column (+ from for aliases)
    subquery_column,  // from (subquery) + name
    bind,             // value (has_value) or key
    null,
    true_,
    false_,
    literal_column,   // name = raw SQL
    binary,           // children[0] op children[1]; name = operator
    unary,            // name = operator; prefix ? "op x" : "x op"
    clause_list,      // AND / OR of children; name = "AND" | "OR"
    function,         // name(children...)
    label,            // children[0] AS name
    cast,             // CAST(children[0] AS type)
    case_,            // children: when, then, when, then, ..., [else]
    in_list,          // children[0] [NOT] IN (children[1..]) ; negate
    in_select,        // children[0] [NOT] IN (select)
    between,          // children[0] BETWEEN children[1] AND children[2]
    scalar_subquery,  // (select)
    exists,           // EXISTS (select)
    grouping,         // (children[0])
};

enum class Prec : int {
    lowest = 0,
    or_ = 2,
    and_ = 3,
    not_ = 4,
    comparison = 5,
    concat = 6,
    add = 7,
    mul = 8,
    unary = 9,
    highest = 100,
};

struct ExprNode {
    ExprKind kind;
    TypeEngine type;
    std::string name;
    Value value;
    bool has_value = false;
    bool negate = false;
    bool prefix = false;
    Prec prec = Prec::highest;
    const Column* column = nullptr;
    FromPtr from;  // column: alias node or null (base table); subquery_column: subquery
    std::vector<ExprPtr> children;
    std::shared_ptr<const SelectData> select;
};

enum class FromKind : std::uint8_t { table, alias, join, subquery };

struct FromNode {
    FromKind kind;
    const Table* table = nullptr;  // table, alias of a table
    std::string name;              // alias / subquery name ("" = anonymous)
    FromPtr left, right;           // join
    ExprPtr onclause;
    bool isouter = false;
    std::shared_ptr<const SelectData> select;      // subquery of a select
    std::shared_ptr<const CompoundData> compound;  // subquery of a union
    std::vector<std::string> column_names;         // subquery's exported columns
    std::vector<TypeEngine> column_types;
};

struct SelectData {
    std::vector<ColumnElement> columns;
    std::vector<FromPtr> froms;  // explicit: select_from, joins
    std::vector<ColumnElement> where;
    std::vector<ColumnElement> group_by;
    std::vector<ColumnElement> having;
    std::vector<ColumnElement> order_by;
    std::optional<std::int64_t> limit;
    std::optional<std::int64_t> offset;
    bool distinct = false;
    bool star = false;  // SELECT * (exists())
};

struct CompoundData {
    std::string keyword;
    std::vector<Select> selects;
    std::vector<ColumnElement> order_by;
    std::optional<std::int64_t> limit;
    std::optional<std::int64_t> offset;
};

struct InsertData {
    const Table* table = nullptr;
    std::vector<std::pair<std::string, ColumnElement>> values;
    std::vector<Params> multi;
    std::vector<ColumnElement> returning;
};

struct UpdateData {
    const Table* table = nullptr;
    std::vector<std::pair<std::string, ColumnElement>> values;
    std::vector<ColumnElement> where;
    std::vector<ColumnElement> returning;
};

struct DeleteData {
    const Table* table = nullptr;
    std::vector<ColumnElement> where;
    std::vector<ColumnElement> returning;
};

struct CompileCache {
    struct Entry {
        std::uint64_t dialect;  // Dialect::cache_id()
        std::string key;
        std::shared_ptr<const Compiled> compiled;
    };
    std::mutex mutex;
    std::vector<Entry> entries;
};

/// A statement's shape: the text of `key` decides its SQL for a dialect; `literals` are the
/// literal bind nodes in the order the shape walk met them.
struct ShapeKey {
    std::string key;
    std::vector<const ExprNode*> literals;
    std::vector<const FromNode*> froms;  // aliases/subqueries by first appearance
    bool cacheable = true;
};
void shape_select(const SelectData& s, ShapeKey& k);
void shape_compound(const CompoundData& c, ShapeKey& k);
void shape_expr(const ExprNode& e, ShapeKey& k);
void shape_name(std::string& k, std::string_view s);

// Builders shared by elements.cpp and selectable.cpp.
ExprPtr make_column_ref(const Column* c, FromPtr from);
ColumnElement make_binary(const ColumnElement& l, const char* op, const ColumnElement& r, Prec p,
                          TypeEngine type = NullType());
FromPtr make_join(const FromPtr& left, const FromPtr& right, const ColumnElement& on, bool outer);
/// The FROM a column expression belongs to (table node, alias or subquery), or null.
FromPtr from_of(const ExprNode& e);
/// Appends (once each) every FROM referenced by the expression tree, not descending into
/// subqueries.
void collect_froms(const ExprNode& e, std::vector<FromPtr>& out);
/// The tables (base tables of table/alias nodes) in a FROM tree, with the node standing for each.
void leaf_froms(const FromPtr& f, std::vector<FromPtr>& out);

}  // namespace athanor::detail
