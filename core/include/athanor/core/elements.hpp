// Column expressions of the SQL expression language: columns, bound values, operators,
// functions, labels, CASE, CAST. A ColumnElement is an immutable value (a shared pointer to an
// expression node): cheap to copy, safe to share between threads once built.
//
// Every C++ value used in an expression becomes a bound parameter; nothing is spliced into SQL.
#pragma once

#include <athanor/core/types.hpp>
#include <athanor/core/value.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace athanor {

namespace detail {
struct ExprNode;
struct FromNode;
struct SelectData;
}  // namespace detail

class Select;
class Column;

/// Options of startswith / endswith / contains.
struct LikeOptions {
    bool autoescape = false;
};

class ColumnElement {
public:
    /// An empty element (no expression); most operations on it throw ArgumentError.
    ColumnElement() = default;
    /// A bound parameter holding `v`.
    template <class T>
        requires ValueConvertible<T>
    ColumnElement(const T& v) : ColumnElement(bind_value(Value(v))) {}
    ColumnElement(const Value& v) : ColumnElement(bind_value(v)) {}
    ColumnElement(const char* s) : ColumnElement(bind_value(Value(s))) {}
    /// SQL NULL (`col == nullptr` compiles to IS NULL, as `== None` does).
    ColumnElement(std::nullptr_t);
    explicit ColumnElement(std::shared_ptr<const detail::ExprNode> node) noexcept
        : node_(std::move(node)) {}

    bool valid() const noexcept { return node_ != nullptr; }
    const detail::ExprNode& node() const;  // throws ArgumentError when empty
    const std::shared_ptr<const detail::ExprNode>& node_ptr() const noexcept { return node_; }

    /// The SQL type of the expression (NullType when unknown).
    TypeEngine type() const;
    /// The name a result row uses for this expression: the column name or the label, or "".
    std::string key() const;
    /// The schema column when this is a plain column reference, else nullptr.
    const Column* column() const noexcept;

    ColumnElement like(const ColumnElement& pattern) const;
    ColumnElement not_like(const ColumnElement& pattern) const;
    /// Case-insensitive LIKE (lower(x) LIKE lower(?) where the dialect has no ILIKE).
    ColumnElement ilike(const ColumnElement& pattern) const;
    /// LIKE with an escape character: like("a/%%", '/') renders "LIKE ? ESCAPE '/'".
    ColumnElement like(const ColumnElement& pattern, char escape) const;
    /// startswith/endswith/contains: LIKE with '%' added. With {.autoescape = true} the value
    /// (a literal string) has '%', '_' and '/' escaped with '/' and ESCAPE '/' is rendered, so
    /// they match literally (SQLAlchemy's autoescape).
    ColumnElement startswith(const ColumnElement& s, LikeOptions o = {}) const;
    ColumnElement endswith(const ColumnElement& s, LikeOptions o = {}) const;
    ColumnElement contains(const ColumnElement& s, LikeOptions o = {}) const;
    /// IN with one bound parameter per value; an empty list compiles to a false expression.
    ColumnElement in_(const std::vector<Value>& values) const;
    ColumnElement in_(const Select& subquery) const;
    ColumnElement not_in(const std::vector<Value>& values) const;
    ColumnElement not_in(const Select& subquery) const;
    ColumnElement between(const ColumnElement& low, const ColumnElement& high) const;
    ColumnElement is_(const ColumnElement& other) const;  // is_(nullptr): IS NULL
    ColumnElement is_not(const ColumnElement& other) const;
    /// NULL-safe comparisons: IS DISTINCT FROM / IS NOT DISTINCT FROM (SQLite: IS NOT / IS).
    ColumnElement is_distinct_from(const ColumnElement& other) const;
    ColumnElement is_not_distinct_from(const ColumnElement& other) const;
    ColumnElement concat(const ColumnElement& other) const;
    ColumnElement asc() const;
    ColumnElement desc() const;
    ColumnElement nulls_first() const;
    ColumnElement nulls_last() const;
    ColumnElement label(std::string name) const;
    /// Generic binary operator: col.op("&", 5) renders "col & ?". The operator must be symbols
    /// or words (ArgumentError otherwise): it is spliced into the SQL, never bound.
    ColumnElement op(const std::string& sql_operator, const ColumnElement& other) const;


    // Operators are hidden friends: found only when an operand is a ColumnElement.
    friend ColumnElement operator==(const ColumnElement& a, const ColumnElement& b);
    friend ColumnElement operator!=(const ColumnElement& a, const ColumnElement& b);
    friend ColumnElement operator<(const ColumnElement& a, const ColumnElement& b);
    friend ColumnElement operator<=(const ColumnElement& a, const ColumnElement& b);
    friend ColumnElement operator>(const ColumnElement& a, const ColumnElement& b);
    friend ColumnElement operator>=(const ColumnElement& a, const ColumnElement& b);
    friend ColumnElement operator&&(const ColumnElement& a, const ColumnElement& b);
    friend ColumnElement operator||(const ColumnElement& a, const ColumnElement& b);
    friend ColumnElement operator!(const ColumnElement& a);
    friend ColumnElement operator+(const ColumnElement& a, const ColumnElement& b);  // || for strings
    friend ColumnElement operator-(const ColumnElement& a, const ColumnElement& b);
    friend ColumnElement operator*(const ColumnElement& a, const ColumnElement& b);
    friend ColumnElement operator/(const ColumnElement& a, const ColumnElement& b);
    friend ColumnElement operator%(const ColumnElement& a, const ColumnElement& b);
    friend ColumnElement operator-(const ColumnElement& a);

private:
    static ColumnElement bind_value(const Value& v);
    std::shared_ptr<const detail::ExprNode> node_;
};


/// AND / OR of any number of clauses (empty elements are skipped).
ColumnElement and_(std::vector<ColumnElement> clauses);
ColumnElement or_(std::vector<ColumnElement> clauses);
template <class... E>
ColumnElement and_(const ColumnElement& first, const E&... rest) {
    return and_(std::vector<ColumnElement>{first, ColumnElement(rest)...});
}
template <class... E>
ColumnElement or_(const ColumnElement& first, const E&... rest) {
    return or_(std::vector<ColumnElement>{first, ColumnElement(rest)...});
}
ColumnElement not_(const ColumnElement& clause);

/// A value rendered as a bound parameter with an explicit type.
ColumnElement literal(const Value& v, TypeEngine type = NullType());
/// A named bound parameter whose value comes from the execution's Params.
ColumnElement bindparam(std::string key, TypeEngine type = NullType());
/// A literal SQL fragment used as a column expression (never pass user input here).
ColumnElement literal_column(std::string sql, TypeEngine type = NullType());
ColumnElement null();
ColumnElement true_();
ColumnElement false_();
ColumnElement cast(const ColumnElement& e, TypeEngine type);
ColumnElement asc(const ColumnElement& e);
ColumnElement desc(const ColumnElement& e);
ColumnElement distinct(const ColumnElement& e);

/// CASE WHEN ... THEN ... [ELSE ...] END.
ColumnElement case_(std::vector<std::pair<ColumnElement, ColumnElement>> whens,
                    const ColumnElement& else_ = ColumnElement());

/// SQL functions: func::count(col), func::lower(col), func::call("my_fn", a, b).
namespace func {
ColumnElement call(std::string name, std::vector<ColumnElement> args,
                   TypeEngine type = NullType());
template <class... A>
    requires(std::is_constructible_v<ColumnElement, const A&> && ...)
ColumnElement call(std::string name, const A&... args) {
    return call(std::move(name), std::vector<ColumnElement>{ColumnElement(args)...});
}
ColumnElement count();  // count(*)
ColumnElement count(const ColumnElement& e);
ColumnElement sum(const ColumnElement& e);
ColumnElement min(const ColumnElement& e);
ColumnElement max(const ColumnElement& e);
ColumnElement avg(const ColumnElement& e);
ColumnElement lower(const ColumnElement& e);
ColumnElement upper(const ColumnElement& e);
ColumnElement length(const ColumnElement& e);
ColumnElement abs(const ColumnElement& e);
ColumnElement now();
template <class... A>
ColumnElement coalesce(const ColumnElement& first, const A&... rest) {
    return call("coalesce", std::vector<ColumnElement>{first, ColumnElement(rest)...},
                first.type());
}
}  // namespace func

}  // namespace athanor
