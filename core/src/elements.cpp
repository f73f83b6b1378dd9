#include "nodes.hpp"
#include "sql_guard.hpp"

#include <athanor/core/elements.hpp>
#include <athanor/core/exc.hpp>

namespace athanor {

using namespace detail;

namespace {
ColumnElement mk(ExprNode n) { return ColumnElement(std::make_shared<const ExprNode>(std::move(n))); }

ExprNode node_of(ExprKind k, TypeEngine t = NullType()) {
    ExprNode n{};
    n.kind = k;
    n.type = t;
    return n;
}

// NULL itself, or a literal value that is NULL (col == std::optional<T>{}): comparisons with
// either render IS NULL / IS NOT NULL, as SQLAlchemy's == None does.
bool is_null_node(const ColumnElement& e) {
    if (!e.valid()) return false;
    const ExprNode& n = e.node();
    return n.kind == ExprKind::null || (n.kind == ExprKind::bind && n.has_value && n.name.empty() && n.value.is_null());
}

bool is_stringish(const TypeEngine& t) {
    return t.kind() == TypeKind::String || t.kind() == TypeKind::Text;
}

// A bound value takes the type of the expression it is compared with.
ColumnElement coerce(const ColumnElement& e, const TypeEngine& against) {
    if (!e.valid() || e.node().kind != ExprKind::bind || e.node().type.kind() != TypeKind::Null ||
        against.kind() == TypeKind::Null)
        return e;
    ExprNode n = e.node();
    n.type = against;
    return mk(std::move(n));
}

ColumnElement unary(const ColumnElement& e, const char* op, bool prefix, Prec p,
                    TypeEngine t = NullType()) {
    ExprNode n = node_of(ExprKind::unary, t);
    n.name = op;
    n.prefix = prefix;
    n.prec = p;
    n.children = {e.node_ptr()};
    (void)e.node();
    return mk(std::move(n));
}

ColumnElement grouping(const ColumnElement& e) {
    ExprNode n = node_of(ExprKind::grouping, e.type());
    n.children = {e.node_ptr()};
    return mk(std::move(n));
}
}  // namespace

namespace detail {
ColumnElement make_binary(const ColumnElement& l, const char* op, const ColumnElement& r, Prec p,
                          TypeEngine type) {
    (void)l.node();
    (void)r.node();
    ExprNode n = node_of(ExprKind::binary, type);
    n.name = op;
    n.prec = p;
    n.children = {l.node_ptr(), coerce(r, l.type()).node_ptr()};
    return mk(std::move(n));
}

ExprPtr make_column_ref(const Column* c, FromPtr from) {
    ExprNode n = node_of(ExprKind::column, c->type());
    n.column = c;
    n.name = c->name();
    n.from = std::move(from);
    return std::make_shared<const ExprNode>(std::move(n));
}

FromPtr from_of(const ExprNode& e) {
    if (e.kind == ExprKind::column)
        return e.from ? e.from : (e.column->table() ? e.column->table()->from_node() : nullptr);
    if (e.kind == ExprKind::subquery_column) return e.from;
    return nullptr;
}

void collect_froms(const ExprNode& e, std::vector<FromPtr>& out) {
    if (FromPtr f = from_of(e)) {
        for (const auto& x : out)
            if (x == f) return;
        out.push_back(std::move(f));
        return;
    }
    for (const auto& c : e.children)
        if (c) collect_froms(*c, out);
}
}  // namespace detail

ColumnElement::ColumnElement(std::nullptr_t) : ColumnElement(mk(node_of(ExprKind::null))) {}

ColumnElement ColumnElement::bind_value(const Value& v) {
    ExprNode n = node_of(ExprKind::bind);
    n.value = v;
    n.has_value = true;
    return mk(std::move(n));
}

const detail::ExprNode& ColumnElement::node() const {
    if (!node_) throw ArgumentError("empty ColumnElement used in an expression");
    return *node_;
}

TypeEngine ColumnElement::type() const { return node_ ? node_->type : TypeEngine(); }

std::string ColumnElement::key() const {
    if (!node_) return "";
    switch (node_->kind) {
        case ExprKind::column:
        case ExprKind::subquery_column:
        case ExprKind::label: return node_->name;
        case ExprKind::cast: return node_->children[0]->kind == ExprKind::column ? node_->children[0]->name : "";
        default: return "";
    }
}

const Column* ColumnElement::column() const noexcept {
    return node_ && node_->kind == ExprKind::column ? node_->column : nullptr;
}

ColumnElement ColumnElement::like(const ColumnElement& p) const {
    return make_binary(*this, "LIKE", p, Prec::comparison, Boolean());
}
ColumnElement ColumnElement::not_like(const ColumnElement& p) const {
    return make_binary(*this, "NOT LIKE", p, Prec::comparison, Boolean());
}
ColumnElement ColumnElement::ilike(const ColumnElement& p) const {
    return make_binary(*this, "ILIKE", p, Prec::comparison, Boolean());
}
namespace {
// A '/'-escaped copy of a literal LIKE operand (autoescape).
ColumnElement autoescaped(const ColumnElement& s) {
    const ExprNode& n = s.node();
    if (n.kind != ExprKind::bind || !n.has_value || !n.value.if_text())
        throw ArgumentError("autoescape needs a literal string value");
    std::string out;
    for (char c : *n.value.if_text()) {
        if (c == '/' || c == '%' || c == '_') out += '/';
        out += c;
    }
    return ColumnElement(Value(std::move(out)));
}
ColumnElement with_escape(const ColumnElement& like, char escape) {
    if (escape == '\'' || escape == '\0') throw ArgumentError("a LIKE escape character cannot be a quote or NUL");
    return unary(like, escape == '/' ? "ESCAPE '/'" : (std::string("ESCAPE '") + escape + "'").c_str(), false,
                 Prec::comparison, Boolean());
}
ColumnElement percent() { return literal_column("'%'"); }
}  // namespace

ColumnElement ColumnElement::like(const ColumnElement& p, char escape) const {
    return with_escape(like(p), escape);
}
ColumnElement ColumnElement::startswith(const ColumnElement& s, LikeOptions o) const {
    ColumnElement v = o.autoescape ? autoescaped(s) : s;
    ColumnElement e = make_binary(*this, "LIKE", make_binary(coerce(v, type()), "||", percent(), Prec::concat),
                                  Prec::comparison, Boolean());
    return grouping(o.autoescape ? with_escape(e, '/') : e);
}
ColumnElement ColumnElement::endswith(const ColumnElement& s, LikeOptions o) const {
    ColumnElement v = o.autoescape ? autoescaped(s) : s;
    ColumnElement e = make_binary(*this, "LIKE", make_binary(percent(), "||", coerce(v, type()), Prec::concat),
                                  Prec::comparison, Boolean());
    return grouping(o.autoescape ? with_escape(e, '/') : e);
}
ColumnElement ColumnElement::contains(const ColumnElement& s, LikeOptions o) const {
    ColumnElement v = o.autoescape ? autoescaped(s) : s;
    auto inner = make_binary(make_binary(percent(), "||", coerce(v, type()), Prec::concat), "||", percent(),
                             Prec::concat);
    ColumnElement e = make_binary(*this, "LIKE", inner, Prec::comparison, Boolean());
    return grouping(o.autoescape ? with_escape(e, '/') : e);
}

ColumnElement ColumnElement::in_(const std::vector<Value>& values) const {
    ExprNode n = node_of(ExprKind::in_list, Boolean());
    n.prec = Prec::comparison;
    n.children.push_back(node_ptr());
    (void)node();
    for (const Value& v : values) n.children.push_back(coerce(ColumnElement(v), type()).node_ptr());
    return mk(std::move(n));
}
ColumnElement ColumnElement::not_in(const std::vector<Value>& values) const {
    ColumnElement e = in_(values);
    ExprNode n = e.node();
    n.negate = true;
    return mk(std::move(n));
}
ColumnElement ColumnElement::in_(const Select& subquery) const {
    ExprNode n = node_of(ExprKind::in_select, Boolean());
    n.prec = Prec::comparison;
    n.children.push_back(node_ptr());
    (void)node();
    n.select = std::shared_ptr<const SelectData>(std::make_shared<SelectData>(subquery.data()));
    return mk(std::move(n));
}
ColumnElement ColumnElement::not_in(const Select& subquery) const {
    ExprNode n = in_(subquery).node();
    n.negate = true;
    return mk(std::move(n));
}
ColumnElement ColumnElement::between(const ColumnElement& low, const ColumnElement& high) const {
    ExprNode n = node_of(ExprKind::between, Boolean());
    n.prec = Prec::comparison;
    (void)node();
    (void)low.node();
    (void)high.node();
    n.children = {node_ptr(), coerce(low, type()).node_ptr(), coerce(high, type()).node_ptr()};
    return mk(std::move(n));
}
ColumnElement ColumnElement::is_(const ColumnElement& other) const {
    return make_binary(*this, "IS", other, Prec::comparison, Boolean());
}
ColumnElement ColumnElement::is_not(const ColumnElement& other) const {
    return make_binary(*this, "IS NOT", other, Prec::comparison, Boolean());
}
ColumnElement ColumnElement::is_distinct_from(const ColumnElement& other) const {
    return make_binary(*this, "IS DISTINCT FROM", other, Prec::comparison, Boolean());
}
ColumnElement ColumnElement::is_not_distinct_from(const ColumnElement& other) const {
    return make_binary(*this, "IS NOT DISTINCT FROM", other, Prec::comparison, Boolean());
}
ColumnElement ColumnElement::concat(const ColumnElement& other) const {
    return make_binary(*this, "||", other, Prec::concat, type());
}
ColumnElement ColumnElement::asc() const { return unary(*this, "ASC", false, Prec::lowest, type()); }
ColumnElement ColumnElement::desc() const { return unary(*this, "DESC", false, Prec::lowest, type()); }
ColumnElement ColumnElement::nulls_first() const {
    return unary(*this, "NULLS FIRST", false, Prec::lowest, type());
}
ColumnElement ColumnElement::nulls_last() const {
    return unary(*this, "NULLS LAST", false, Prec::lowest, type());
}
ColumnElement ColumnElement::label(std::string name) const {
    ExprNode n = node_of(ExprKind::label, type());
    (void)node();
    n.name = std::move(name);
    n.children = {node_ptr()};
    return mk(std::move(n));
}
ColumnElement ColumnElement::op(const std::string& sql_operator, const ColumnElement& other) const {
    check_operator(sql_operator);
    ExprNode n = make_binary(*this, "", other, Prec::comparison).node();
    n.name = sql_operator;
    return mk(std::move(n));
}

// ---- operators ------------------------------------------------------------------------------

ColumnElement operator==(const ColumnElement& a, const ColumnElement& b) {
    if (is_null_node(b)) return make_binary(a, "IS", ColumnElement(nullptr), Prec::comparison, Boolean());
    if (is_null_node(a)) return make_binary(b, "IS", ColumnElement(nullptr), Prec::comparison, Boolean());
    return make_binary(a, "=", b, Prec::comparison, Boolean());
}
ColumnElement operator!=(const ColumnElement& a, const ColumnElement& b) {
    if (is_null_node(b)) return make_binary(a, "IS NOT", ColumnElement(nullptr), Prec::comparison, Boolean());
    if (is_null_node(a)) return make_binary(b, "IS NOT", ColumnElement(nullptr), Prec::comparison, Boolean());
    return make_binary(a, "!=", b, Prec::comparison, Boolean());
}
ColumnElement operator<(const ColumnElement& a, const ColumnElement& b) {
    return make_binary(a, "<", b, Prec::comparison, Boolean());
}
ColumnElement operator<=(const ColumnElement& a, const ColumnElement& b) {
    return make_binary(a, "<=", b, Prec::comparison, Boolean());
}
ColumnElement operator>(const ColumnElement& a, const ColumnElement& b) {
    return make_binary(a, ">", b, Prec::comparison, Boolean());
}
ColumnElement operator>=(const ColumnElement& a, const ColumnElement& b) {
    return make_binary(a, ">=", b, Prec::comparison, Boolean());
}
ColumnElement operator&&(const ColumnElement& a, const ColumnElement& b) { return and_({a, b}); }
ColumnElement operator||(const ColumnElement& a, const ColumnElement& b) { return or_({a, b}); }
ColumnElement operator!(const ColumnElement& a) { return not_(a); }
ColumnElement operator+(const ColumnElement& a, const ColumnElement& b) {
    if (is_stringish(a.type()) || is_stringish(b.type()))
        return make_binary(a, "||", b, Prec::concat, is_stringish(a.type()) ? a.type() : b.type());
    return make_binary(a, "+", b, Prec::add, a.type());
}
ColumnElement operator-(const ColumnElement& a, const ColumnElement& b) {
    return make_binary(a, "-", b, Prec::add, a.type());
}
ColumnElement operator*(const ColumnElement& a, const ColumnElement& b) {
    return make_binary(a, "*", b, Prec::mul, a.type());
}
ColumnElement operator/(const ColumnElement& a, const ColumnElement& b) {
    return make_binary(a, "/", b, Prec::mul, a.type());
}
ColumnElement operator%(const ColumnElement& a, const ColumnElement& b) {
    return make_binary(a, "%", b, Prec::mul, a.type());
}
ColumnElement operator-(const ColumnElement& a) { return unary(a, "-", true, Prec::unary, a.type()); }

namespace {
ColumnElement clause_list(const char* op, Prec p, std::vector<ColumnElement> clauses) {
    ExprNode n = node_of(ExprKind::clause_list, Boolean());
    n.name = op;
    n.prec = p;
    for (auto& c : clauses) {
        if (!c.valid()) continue;
        // Flatten nested lists of the same operator: and_(and_(a, b), c) is a AND b AND c.
        if (c.node().kind == ExprKind::clause_list && c.node().name == op) {
            for (const auto& ch : c.node().children) n.children.push_back(ch);
        } else {
            n.children.push_back(c.node_ptr());
        }
    }
    if (n.children.size() == 1) return ColumnElement(n.children.front());
    return mk(std::move(n));
}
}  // namespace

ColumnElement and_(std::vector<ColumnElement> clauses) {
    return clause_list("AND", Prec::and_, std::move(clauses));
}
ColumnElement or_(std::vector<ColumnElement> clauses) {
    return clause_list("OR", Prec::or_, std::move(clauses));
}

ColumnElement not_(const ColumnElement& clause) {
    const ExprNode& c = clause.node();
    // Negating a comparison flips its operator, as SQLAlchemy does: ~(a == b) is a != b.
    if (c.kind == ExprKind::binary) {
        static const std::pair<const char*, const char*> flips[] = {
            {"=", "!="}, {"!=", "="}, {"<", ">="}, {">=", "<"}, {">", "<="}, {"<=", ">"},
            {"IS", "IS NOT"}, {"IS NOT", "IS"}, {"LIKE", "NOT LIKE"}, {"NOT LIKE", "LIKE"},
        };
        for (auto [from, to] : flips)
            if (c.name == from) {
                ExprNode n = c;
                n.name = to;
                return mk(std::move(n));
            }
    }
    if (c.kind == ExprKind::in_list || c.kind == ExprKind::in_select) {
        ExprNode n = c;
        n.negate = !n.negate;
        return mk(std::move(n));
    }
    if (c.kind == ExprKind::unary && c.name == "NOT") return ColumnElement(c.children[0]);
    return unary(clause, "NOT", true, Prec::not_, Boolean());
}

ColumnElement literal(const Value& v, TypeEngine type) {
    ExprNode n = node_of(ExprKind::bind, type);
    n.value = v;
    n.has_value = true;
    return mk(std::move(n));
}
ColumnElement bindparam(std::string key, TypeEngine type) {
    if (key.empty()) throw ArgumentError("bindparam() needs a name");
    ExprNode n = node_of(ExprKind::bind, type);
    n.name = std::move(key);
    return mk(std::move(n));
}
ColumnElement literal_column(std::string sql, TypeEngine type) {
    ExprNode n = node_of(ExprKind::literal_column, type);
    n.name = std::move(sql);
    return mk(std::move(n));
}
ColumnElement null() { return mk(node_of(ExprKind::null)); }
ColumnElement true_() { return mk(node_of(ExprKind::true_, Boolean())); }
ColumnElement false_() { return mk(node_of(ExprKind::false_, Boolean())); }
ColumnElement cast(const ColumnElement& e, TypeEngine type) {
    ExprNode n = node_of(ExprKind::cast, type);
    (void)e.node();
    n.children = {e.node_ptr()};
    return mk(std::move(n));
}
ColumnElement asc(const ColumnElement& e) { return e.asc(); }
ColumnElement desc(const ColumnElement& e) { return e.desc(); }
ColumnElement distinct(const ColumnElement& e) {
    return unary(e, "DISTINCT", true, Prec::highest, e.type());
}

ColumnElement case_(std::vector<std::pair<ColumnElement, ColumnElement>> whens,
                    const ColumnElement& else_) {
    if (whens.empty()) throw ArgumentError("case_() needs at least one WHEN clause");
    ExprNode n = node_of(ExprKind::case_, whens.front().second.type());
    for (auto& [w, t] : whens) {
        n.children.push_back(w.node_ptr());
        n.children.push_back(t.node_ptr());
        (void)w.node();
        (void)t.node();
    }
    if (else_.valid()) {
        n.children.push_back(else_.node_ptr());
        n.negate = true;  // marks "has ELSE"
    }
    return mk(std::move(n));
}

namespace func {
ColumnElement call(std::string name, std::vector<ColumnElement> args, TypeEngine type) {
    if (name.empty()) throw ArgumentError("func::call() needs a function name");
    check_function_name(name);
    ExprNode n = node_of(ExprKind::function, type);
    n.name = std::move(name);
    for (auto& a : args) {
        (void)a.node();
        n.children.push_back(a.node_ptr());
    }
    return mk(std::move(n));
}
ColumnElement count() { return call("count", std::vector<ColumnElement>{}, Integer()); }
ColumnElement count(const ColumnElement& e) { return call("count", {e}, Integer()); }
ColumnElement sum(const ColumnElement& e) { return call("sum", {e}, e.type()); }
ColumnElement min(const ColumnElement& e) { return call("min", {e}, e.type()); }
ColumnElement max(const ColumnElement& e) { return call("max", {e}, e.type()); }
ColumnElement avg(const ColumnElement& e) { return call("avg", {e}, Float()); }
ColumnElement lower(const ColumnElement& e) { return call("lower", {e}, e.type()); }
ColumnElement upper(const ColumnElement& e) { return call("upper", {e}, e.type()); }
ColumnElement length(const ColumnElement& e) { return call("length", {e}, Integer()); }
ColumnElement abs(const ColumnElement& e) { return call("abs", {e}, e.type()); }
ColumnElement now() { return call("now", std::vector<ColumnElement>{}, DateTime()); }
}  // namespace func

}  // namespace athanor
