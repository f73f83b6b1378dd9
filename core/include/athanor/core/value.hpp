// sa::Value: one SQL value as it crosses the API (null, int64, double, text, blob), and
// sa::Params: an ordered set of named values (statement parameters, a bulk mapping).
//
// C++ values convert to and from Value through ValueTraits<T>; specializations cover the
// integral types, bool, floating point, std::string, Blob, std::optional<T>, nlohmann::json
// (stored as text), std::chrono::year_month_day (a Date, "YYYY-MM-DD") and
// std::chrono::sys_time<D> (a DateTime, "YYYY-MM-DD HH:MM:SS.ffffff", SQLAlchemy's SQLite form).
// A conversion that cannot be made throws ArgumentError naming both kinds.
//
// Values are plain data: copyable, movable, not thread-safe to mutate concurrently.
#pragma once

#include <athanor/core/exc.hpp>
#include <athanor/core/detail/block_cache.hpp>
#include <athanor/core/detail/bytes_equal.hpp>

#include <chrono>
#include <cmath>
#include <concepts>
#include <limits>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace athanor {

using Blob = std::vector<std::uint8_t>;

template <class T, class Enable = void>
struct ValueTraits;  // specialized below for every supported C++ type

template <class T>
concept ValueConvertible = requires { ValueTraits<std::remove_cvref_t<T>>::kind; };

namespace detail {
/// ArgumentError: `what` (a number's text) does not fit in `type` without loss.
[[noreturn]] void throw_number_range(const std::string& what, std::string_view type);
std::string_view integer_type_name(std::size_t size, bool is_signed) noexcept;

/// An integer in int64 (the one integer SQLite stores); ArgumentError for an unsigned value
/// above INT64_MAX instead of wrapping it to a negative number.
template <std::integral I>
constexpr std::int64_t to_int64(I i) {
    if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
        if (i > static_cast<I>(std::numeric_limits<std::int64_t>::max()))
            throw_number_range(std::to_string(i), "a SQL integer (64-bit signed)");
    }
    return static_cast<std::int64_t>(i);
}
/// A stored integer as I; ArgumentError when it does not fit (4294967301 into an int).
template <std::integral I>
I narrow_integer(std::int64_t x) {
    if (!std::in_range<I>(x)) throw_number_range(std::to_string(x), integer_type_name(sizeof(I), std::is_signed_v<I>));
    return static_cast<I>(x);
}
/// A stored real as I: only whole numbers in range convert (2.7, 1e300, inf and NaN do not).
template <std::integral I>
I integer_from_real(double d) {
    // 2^63 is exactly representable; every whole double below it fits in int64.
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != std::trunc(d))
        throw_number_range(std::to_string(d), integer_type_name(sizeof(I), std::is_signed_v<I>));
    return narrow_integer<I>(static_cast<std::int64_t>(d));
}
/// A stored number as F; a finite double beyond F's range is an ArgumentError, not UB.
template <std::floating_point F>
F real_as(double d) {
    if constexpr (sizeof(F) < sizeof(double)) {
        if (std::isfinite(d) && std::fabs(d) > static_cast<double>(std::numeric_limits<F>::max()))
            throw_number_range(std::to_string(d), "float");
    }
    return static_cast<F>(d);
}
}  // namespace detail

struct ValueView;

class Value {
public:
    enum class Kind : std::uint8_t { null = 0, integer, real, text, blob };

    Value() noexcept = default;
    Value(std::nullptr_t) noexcept {}
    Value(std::nullopt_t) noexcept {}
    Value(bool b) noexcept : v_(std::int64_t{b ? 1 : 0}) {}
    template <std::integral I>
        requires(!std::same_as<I, bool> && !std::same_as<I, char>)
    Value(I i) noexcept(std::is_signed_v<I> || sizeof(I) < sizeof(std::int64_t))
        : v_(detail::to_int64(i)) {}
    Value(double d) noexcept : v_(d) {}
    Value(float f) noexcept : v_(static_cast<double>(f)) {}
    Value(const char* s) : v_(std::string(s)) {}
    Value(std::string&& s) noexcept : v_(std::move(s)) {}
    Value(const std::string& s) : v_(s) {}
    Value(std::string_view s) : v_(std::string(s)) {}
    Value(Blob b) noexcept : v_(std::move(b)) {}
    /// A copy of what `v` looks at (its text or blob copied), built in place.
    explicit Value(const ValueView& v) : v_(storage_of(v)) {}
    /// Any other type with a ValueTraits specialization (optional, json, dates).
    template <class T>
        requires(ValueConvertible<T> && !std::is_arithmetic_v<std::remove_cvref_t<T>> &&
                 !std::same_as<std::remove_cvref_t<T>, std::string> &&
                 !std::same_as<std::remove_cvref_t<T>, Blob> &&
                 !std::same_as<std::remove_cvref_t<T>, Value> &&
                 !std::same_as<std::remove_cvref_t<T>, std::nullptr_t> &&
                 !std::same_as<std::remove_cvref_t<T>, std::nullopt_t>)
    Value(const T& v) : Value(ValueTraits<std::remove_cvref_t<T>>::to_value(v)) {}

    Kind kind() const noexcept { return static_cast<Kind>(v_.index()); }
    bool is_null() const noexcept { return v_.index() == 0; }

    /// Typed access; the kind must match exactly (use as<T>() to convert).
    std::int64_t as_int() const;
    double as_double() const;  // integer values convert
    const std::string& as_text() const;
    const Blob& as_blob() const;

    /// Converts to T through ValueTraits<T>; throws ArgumentError when it cannot.
    template <class T>
    T as() const {
        return ValueTraits<std::remove_cvref_t<T>>::from_value(*this);
    }

    /// Python-style repr used by echo: None, 5, 1.5, 'text', b'\x00'.
    std::string repr() const;

    friend bool operator==(const Value& a, const Value& b) noexcept { return a.v_ == b.v_; }

    /// Raw access for the engine's binding code.
    const std::int64_t* if_int() const noexcept { return std::get_if<std::int64_t>(&v_); }
    const double* if_double() const noexcept { return std::get_if<double>(&v_); }
    const std::string* if_text() const noexcept { return std::get_if<std::string>(&v_); }
    const Blob* if_blob() const noexcept { return std::get_if<Blob>(&v_); }

private:
    using Storage = std::variant<std::monostate, std::int64_t, double, std::string, Blob>;
    static Storage storage_of(const ValueView& v);
    Storage v_;
};

std::string_view kind_name(Value::Kind k) noexcept;

/// A non-owning look at a value (as stored in a packed row or a Value).
struct ValueView {
    Value::Kind kind = Value::Kind::null;
    std::int64_t i = 0;
    double d = 0;
    std::string_view bytes;  // text or blob

    static ValueView of(const Value& v) noexcept {
        ValueView w;
        w.kind = v.kind();
        if (auto p = v.if_int()) w.i = *p;
        else if (auto q = v.if_double()) w.d = *q;
        else if (auto t = v.if_text()) w.bytes = *t;
        else if (auto b = v.if_blob()) w.bytes = std::string_view(reinterpret_cast<const char*>(b->data()), b->size());
        return w;
    }
    Value to_value() const;
    friend bool operator==(const ValueView& a, const ValueView& b) noexcept {
        if (a.kind != b.kind) return false;
        switch (a.kind) {
            case Value::Kind::null: return true;
            case Value::Kind::integer: return a.i == b.i;
            case Value::Kind::real: return a.d == b.d || (a.d != a.d && b.d != b.d);  // NaN stays NaN
            default: return detail::bytes_equal(a.bytes, b.bytes);
        }
    }
};

/// Throws ArgumentError("cannot convert <kind> value to <what>").
[[noreturn]] void throw_value_conversion(const Value& v, std::string_view what);

// ---- ValueTraits ---------------------------------------------------------------------------
// kind: the Value::Kind this C++ type is stored as (used to check mappings against columns).

template <std::integral I>
struct ValueTraits<I, std::enable_if_t<!std::is_same_v<I, bool>>> {
    static constexpr Value::Kind kind = Value::Kind::integer;
    static constexpr bool nullable = false;
    static Value to_value(I i) { return Value(detail::to_int64(i)); }
    static I from_value(const Value& v) {
        if (auto p = v.if_int()) return detail::narrow_integer<I>(*p);
        if (auto d = v.if_double()) return detail::integer_from_real<I>(*d);
        throw_value_conversion(v, "an integer");
    }
};

template <>
struct ValueTraits<bool> {
    static constexpr Value::Kind kind = Value::Kind::integer;
    static constexpr bool nullable = false;
    static Value to_value(bool b) { return Value(b); }
    static bool from_value(const Value& v) {
        if (auto p = v.if_int()) return *p != 0;
        throw_value_conversion(v, "a bool");
    }
};

template <std::floating_point F>
struct ValueTraits<F> {
    static constexpr Value::Kind kind = Value::Kind::real;
    static constexpr bool nullable = false;
    static Value to_value(F f) { return Value(static_cast<double>(f)); }
    static F from_value(const Value& v) {
        if (auto d = v.if_double()) return detail::real_as<F>(*d);
        if (auto p = v.if_int()) return static_cast<F>(*p);
        throw_value_conversion(v, "a floating point number");
    }
};

template <>
struct ValueTraits<std::string> {
    static constexpr Value::Kind kind = Value::Kind::text;
    static constexpr bool nullable = false;
    static Value to_value(const std::string& s) { return Value(s); }
    static std::string from_value(const Value& v) {
        if (auto s = v.if_text()) return *s;
        throw_value_conversion(v, "a string");
    }
};

template <>
struct ValueTraits<Blob> {
    static constexpr Value::Kind kind = Value::Kind::blob;
    static constexpr bool nullable = false;
    static Value to_value(const Blob& b) { return Value(b); }
    static Blob from_value(const Value& v) {
        if (auto b = v.if_blob()) return *b;
        if (auto s = v.if_text()) return Blob(s->begin(), s->end());
        throw_value_conversion(v, "a blob");
    }
};

template <>
struct ValueTraits<Value> {
    static constexpr Value::Kind kind = Value::Kind::null;  // any kind
    static constexpr bool nullable = true;
    static Value to_value(const Value& v) { return v; }
    static Value from_value(const Value& v) { return v; }
};

template <ValueConvertible T>
struct ValueTraits<std::optional<T>> {
    static constexpr Value::Kind kind = ValueTraits<T>::kind;
    static constexpr bool nullable = true;
    static Value to_value(const std::optional<T>& o) {
        return o ? ValueTraits<T>::to_value(*o) : Value();
    }
    static std::optional<T> from_value(const Value& v) {
        if (v.is_null()) return std::nullopt;
        return ValueTraits<T>::from_value(v);
    }
};

/// JSON documents are stored as their compact text.
template <>
struct ValueTraits<nlohmann::json> {
    static constexpr Value::Kind kind = Value::Kind::text;
    static constexpr bool nullable = true;  // JSON null is SQL NULL
    static Value to_value(const nlohmann::json& j);
    static nlohmann::json from_value(const Value& v);
};

/// A Date: "YYYY-MM-DD", years 1 to 9999 (Python's date range). An impossible date (February
/// 30th, month 13) is an ArgumentError when stored and when read.
template <>
struct ValueTraits<std::chrono::year_month_day> {
    static constexpr Value::Kind kind = Value::Kind::text;
    static constexpr bool nullable = false;
    static Value to_value(const std::chrono::year_month_day& d);
    static std::chrono::year_month_day from_value(const Value& v);
};

/// A DateTime: "YYYY-MM-DD HH:MM:SS.ffffff" (UTC, microsecond precision), years 1 to 9999;
/// outside that range (datetime::min()) is an ArgumentError, as is malformed text on reading.
/// The C++ value of a DateTime column (Python's datetime), and of a Date column.
using datetime = std::chrono::sys_time<std::chrono::microseconds>;
using date = std::chrono::year_month_day;
std::string format_datetime(datetime t);
datetime parse_datetime(std::string_view s);  // throws ArgumentError

template <class D>
struct ValueTraits<std::chrono::sys_time<D>> {
    static constexpr Value::Kind kind = Value::Kind::text;
    static constexpr bool nullable = false;
    static Value to_value(const std::chrono::sys_time<D>& t) {
        return Value(format_datetime(std::chrono::floor<std::chrono::microseconds>(t)));
    }
    static std::chrono::sys_time<D> from_value(const Value& v) {
        if (auto s = v.if_text()) return std::chrono::floor<D>(parse_datetime(*s));
        throw_value_conversion(v, "a DateTime");
    }
};

/// Whether a C++ value equals a stored value without building a Value (dirty checks compare
/// members with their snapshot this way).
template <class T>
bool value_equals(const T& x, const ValueView& v) {
    if constexpr (std::is_same_v<T, bool>) {
        return v.kind == Value::Kind::integer && v.i == (x ? 1 : 0);
    } else if constexpr (std::is_integral_v<T>) {
        return v.kind == Value::Kind::integer && v.i == static_cast<std::int64_t>(x);
    } else if constexpr (std::is_floating_point_v<T>) {
        // NaN is unchanged when it stays NaN (a loaded NaN must not make the object dirty).
        const double d = static_cast<double>(x);
        return v.kind == Value::Kind::real && (v.d == d || (v.d != v.d && d != d));
    } else if constexpr (std::is_same_v<T, std::string>) {
        return v.kind == Value::Kind::text && detail::bytes_equal(v.bytes, x);
    } else if constexpr (std::is_same_v<T, Blob>) {
        return v.kind == Value::Kind::blob &&
               detail::bytes_equal(v.bytes, std::string_view(reinterpret_cast<const char*>(x.data()), x.size()));
    } else {
        return ValueView::of(ValueTraits<T>::to_value(x)) == v;
    }
}
template <class T>
bool value_equals(const std::optional<T>& x, const ValueView& v) {
    if (!x) return v.kind == Value::Kind::null;
    return value_equals(*x, v);
}

/// Converts a stored value to T; the common kinds without building a Value.
template <class T>
struct FromView {
    static T get(const ValueView& v) {
        if constexpr (std::is_same_v<T, std::string>) {
            if (v.kind == Value::Kind::text) return std::string(v.bytes);
        } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
            if (v.kind == Value::Kind::integer) return detail::narrow_integer<T>(v.i);
        } else if constexpr (std::is_floating_point_v<T>) {
            if (v.kind == Value::Kind::real) return detail::real_as<T>(v.d);
            if (v.kind == Value::Kind::integer) return static_cast<T>(v.i);
        }
        return ValueTraits<T>::from_value(v.to_value());
    }
};
template <class T>
struct FromView<std::optional<T>> {
    static std::optional<T> get(const ValueView& v) {
        if (v.kind == Value::Kind::null) return std::nullopt;
        return FromView<T>::get(v);
    }
};
template <class T>
T value_from_view(const ValueView& v) {
    return FromView<T>::get(v);
}

// ---- Params --------------------------------------------------------------------------------

/// Named values in insertion order. Small and flat: lookup is a linear scan, which beats a
/// tree or hash for the handful of names a statement has. A name set twice keeps the last value.
/// Its buffer comes from a per-thread cache of small blocks (detail/block_cache.hpp), so a
/// program building batches of Params reuses the buffers of the batch before.
class Params {
public:
    using value_type = std::pair<std::string, Value>;
    using const_iterator = std::vector<value_type, detail::CachedAllocator<value_type>>::const_iterator;

    Params() = default;
    Params(std::initializer_list<value_type> items);

    /// The value for `name`, or nullptr.
    const Value* find(std::string_view name) const noexcept {
        for (const auto& [k, v] : items_)
            if (k == name) return &v;
        return nullptr;
    }
    bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }
    /// The value for `name`; throws ArgumentError if absent.
    const Value& at(std::string_view name) const;
    /// Inserts or replaces. The value is built in its place from `v` (a std::string passed
    /// as an rvalue is moved in, never copied), the name copied from the view.
    template <class T>
        requires std::constructible_from<Value, T&&>
    void set(std::string_view name, T&& v) {
        if (Value* old = find_mutable(name)) {
            *old = Value(std::forward<T>(v));
            return;
        }
        items_.emplace_back(std::piecewise_construct, std::forward_as_tuple(name),
                            std::forward_as_tuple(std::forward<T>(v)));
    }
    /// A braced value (`set("n", {})` for NULL) or a Value.
    void set(std::string_view name, Value v) { set<Value>(name, std::move(v)); }
    Value& operator[](std::string_view name);
    bool erase(std::string_view name);

    std::size_t size() const noexcept { return items_.size(); }
    bool empty() const noexcept { return items_.empty(); }
    void reserve(std::size_t n) { items_.reserve(n); }
    void clear() noexcept { items_.clear(); }
    const_iterator begin() const noexcept { return items_.begin(); }
    const_iterator end() const noexcept { return items_.end(); }

    /// Same names with the same values, regardless of order.
    friend bool operator==(const Params& a, const Params& b);

private:
    Value* find_mutable(std::string_view name) noexcept { return const_cast<Value*>(find(name)); }

    std::vector<value_type, detail::CachedAllocator<value_type>> items_;
};

}  // namespace athanor
