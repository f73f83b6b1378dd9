#include <athanor/core/exc.hpp>
#include <athanor/core/types.hpp>

namespace athanor {

namespace {
struct TypeName {
    TypeKind kind;
    std::string_view name;
};
constexpr TypeName kTypeNames[] = {
    {TypeKind::Null, "NullType"},      {TypeKind::Integer, "Integer"},
    {TypeKind::BigInteger, "BigInteger"}, {TypeKind::Float, "Float"},
    {TypeKind::Numeric, "Numeric"},    {TypeKind::String, "String"},
    {TypeKind::Text, "Text"},          {TypeKind::Boolean, "Boolean"},
    {TypeKind::Date, "Date"},          {TypeKind::DateTime, "DateTime"},
    {TypeKind::LargeBinary, "LargeBinary"}, {TypeKind::JSON, "JSON"},
};
}  // namespace

std::string_view TypeEngine::name() const noexcept {
    for (const auto& t : kTypeNames)
        if (t.kind == kind_) return t.name;
    return "NullType";
}

TypeEngine TypeEngine::from_name(std::string_view name, int length, int precision, int scale) {
    for (const auto& t : kTypeNames)
        if (t.name == name) return TypeEngine(t.kind, length, precision, scale);
    throw ArgumentError("unknown type '" + std::string(name) + "'");
}

std::string TypeEngine::repr() const {
    std::string s(name());
    // Appended piecewise: GCC 12 warns (-Wrestrict) on some string operator+ chains at -O2.
    if (kind_ == TypeKind::String && length_ > 0) {
        s.append("(").append(std::to_string(length_)).append(")");
    } else if (kind_ == TypeKind::Numeric && precision_ > 0) {
        s.append("(").append(std::to_string(precision_)).append(", ").append(std::to_string(scale_)).append(")");
    } else if (kind_ != TypeKind::String && kind_ != TypeKind::Numeric) {
        s.append("()");
    }
    return s;
}

Value::Kind TypeEngine::storage_kind() const noexcept {
    switch (kind_) {
        case TypeKind::Integer:
        case TypeKind::BigInteger:
        case TypeKind::Boolean: return Value::Kind::integer;
        case TypeKind::Float:
        case TypeKind::Numeric: return Value::Kind::real;
        case TypeKind::String:
        case TypeKind::Text:
        case TypeKind::Date:
        case TypeKind::DateTime:
        case TypeKind::JSON: return Value::Kind::text;
        case TypeKind::LargeBinary: return Value::Kind::blob;
        case TypeKind::Null: return Value::Kind::null;
    }
    return Value::Kind::null;
}

bool TypeEngine::accepts(Value::Kind k) const noexcept {
    if (k == Value::Kind::null || kind_ == TypeKind::Null) return true;
    Value::Kind s = storage_kind();
    if (s == k) return true;
    // An integer member may live in a Float/Numeric column; a real one may not live in Integer.
    if (s == Value::Kind::real && k == Value::Kind::integer) return true;
    return false;
}

}  // namespace athanor
