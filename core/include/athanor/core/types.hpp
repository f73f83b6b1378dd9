// Type engines: what a column stores, how it is spelled in DDL (by the dialect), and which
// C++ value kind it holds. Types are small values; sa::String(50) slices into TypeEngine.
#pragma once

#include <athanor/core/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace athanor {

enum class TypeKind : std::uint8_t {
    Null,  // the type of an expression with no known type
    Integer,
    BigInteger,
    Float,
    Numeric,
    String,
    Text,
    Boolean,
    Date,
    DateTime,
    LargeBinary,
    JSON,
};

class TypeEngine {
public:
    TypeEngine() = default;
    constexpr TypeEngine(TypeKind k, int length = 0, int precision = 0, int scale = 0) noexcept
        : kind_(k), length_(length), precision_(precision), scale_(scale) {}

    TypeKind kind() const noexcept { return kind_; }
    /// String(n): n, or 0 when unbounded.
    int length() const noexcept { return length_; }
    /// Numeric(p, s): p and s, or 0 when not given.
    int precision() const noexcept { return precision_; }
    int scale() const noexcept { return scale_; }

    /// "Integer", "String", ... (SQLAlchemy's class names; used in JSON schemas and messages).
    std::string_view name() const noexcept;
    /// Parses a name produced by name(); throws ArgumentError for an unknown name.
    static TypeEngine from_name(std::string_view name, int length = 0, int precision = 0,
                                int scale = 0);
    /// "String(50)", "Numeric(10, 2)", "Integer": for messages.
    std::string repr() const;

    /// The Value kind stored for this type (Boolean, Date... map onto integer/text).
    Value::Kind storage_kind() const noexcept;
    /// True for Integer and BigInteger (candidates for an autoincrement primary key).
    bool is_integer() const noexcept {
        return kind_ == TypeKind::Integer || kind_ == TypeKind::BigInteger;
    }

    /// Can a C++ value stored as `k` be bound to this column without losing meaning?
    bool accepts(Value::Kind k) const noexcept;

    friend bool operator==(const TypeEngine&, const TypeEngine&) = default;

private:
    TypeKind kind_ = TypeKind::Null;
    int length_ = 0;
    int precision_ = 0;
    int scale_ = 0;
};

struct NullType : TypeEngine {
    constexpr NullType() : TypeEngine(TypeKind::Null) {}
};
struct Integer : TypeEngine {
    constexpr Integer() : TypeEngine(TypeKind::Integer) {}
};
struct BigInteger : TypeEngine {
    constexpr BigInteger() : TypeEngine(TypeKind::BigInteger) {}
};
struct Float : TypeEngine {
    constexpr Float() : TypeEngine(TypeKind::Float) {}
};
struct Numeric : TypeEngine {
    constexpr explicit Numeric(int precision = 0, int scale = 0)
        : TypeEngine(TypeKind::Numeric, 0, precision, scale) {}
};
struct String : TypeEngine {
    constexpr explicit String(int length = 0) : TypeEngine(TypeKind::String, length) {}
};
struct Text : TypeEngine {
    constexpr Text() : TypeEngine(TypeKind::Text) {}
};
struct Boolean : TypeEngine {
    constexpr Boolean() : TypeEngine(TypeKind::Boolean) {}
};
struct Date : TypeEngine {
    constexpr Date() : TypeEngine(TypeKind::Date) {}
};
struct DateTime : TypeEngine {
    constexpr DateTime() : TypeEngine(TypeKind::DateTime) {}
};
struct LargeBinary : TypeEngine {
    constexpr LargeBinary() : TypeEngine(TypeKind::LargeBinary) {}
};
struct JSON : TypeEngine {
    constexpr JSON() : TypeEngine(TypeKind::JSON) {}
};

/// The type SQLAlchemy would infer for a C++ member type (used by declarative columns).
template <class T>
struct TypeFor;
template <std::integral I>
    requires(!std::same_as<I, bool>)
struct TypeFor<I> {
    static TypeEngine get() { return Integer(); }
};
template <>
struct TypeFor<bool> {
    static TypeEngine get() { return Boolean(); }
};
template <std::floating_point F>
struct TypeFor<F> {
    static TypeEngine get() { return Float(); }
};
template <>
struct TypeFor<std::string> {
    static TypeEngine get() { return String(); }
};
template <>
struct TypeFor<Blob> {
    static TypeEngine get() { return LargeBinary(); }
};
template <>
struct TypeFor<nlohmann::json> {
    static TypeEngine get() { return JSON(); }
};
template <>
struct TypeFor<std::chrono::year_month_day> {
    static TypeEngine get() { return Date(); }
};
template <class D>
struct TypeFor<std::chrono::sys_time<D>> {
    static TypeEngine get() { return DateTime(); }
};
template <class T>
struct TypeFor<std::optional<T>> : TypeFor<T> {};

}  // namespace athanor
