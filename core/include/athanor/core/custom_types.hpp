// Custom C++ types on columns: enums (sa::EnumTraits, the sa::Enum<E>() column type) and any
// other type through a TypeDecorator specialization (SQLAlchemy's TypeDecorator: an `impl`
// type that SQL knows, and the conversions to and from it).
//
//   enum class Status { active, archived };
//   template <> struct athanor::EnumTraits<Status> {       // stored as names ("active")
//       static constexpr std::pair<Status, std::string_view> names[] = {
//           {Status::active, "active"}, {Status::archived, "archived"}};
//   };
//   // without an EnumTraits specialization an enum is stored as its integer value
//
//   template <> struct athanor::TypeDecorator<Uuid> {         // a UUID as TEXT
//       using impl = std::string;
//       static TypeEngine type() { return String(36); }       // optional: the column type
//       static std::string process_bind_param(const Uuid& u) { return u.str(); }
//       static Uuid process_result_value(const std::string& s) { return Uuid::parse(s); }
//   };
//
// Both then work as member types in classical mapping, in declarative mapped_column (the
// column type comes from TypeFor<T> unless one is given) and in expressions
// (attr(&Task::status) == Status::active binds "active"). A stored value that does not convert
// back (an unknown enum name) is an ArgumentError naming it.
#pragma once

#include <athanor/core/types.hpp>
#include <athanor/core/value.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace athanor {

/// Specialize with `names` (pairs of value and name) to store an enum by name.
template <class E>
struct EnumTraits;

/// Specialize to map a C++ type onto a column through `impl`.
template <class T>
struct TypeDecorator;

namespace detail {
template <class E>
concept NamedEnum = std::is_enum_v<E> && requires { EnumTraits<E>::names; };
template <class T>
concept Decorated = requires { typename TypeDecorator<T>::impl; };

template <class E>
std::size_t longest_enum_name() {
    std::size_t n = 0;
    for (const auto& [v, name] : EnumTraits<E>::names) n = std::max(n, name.size());
    return n;
}
}  // namespace detail

/// The column type of an enum: VARCHAR of its longest name (stored by name), or INTEGER.
template <class E>
    requires std::is_enum_v<E>
TypeEngine Enum() {
    if constexpr (detail::NamedEnum<E>) return String(static_cast<int>(detail::longest_enum_name<E>()));
    else return Integer();
}

template <class E>
    requires std::is_enum_v<E>
struct ValueTraits<E, void> {
    static constexpr Value::Kind kind = detail::NamedEnum<E> ? Value::Kind::text : Value::Kind::integer;
    static constexpr bool nullable = false;
    static Value to_value(E e) {
        if constexpr (detail::NamedEnum<E>) {
            for (const auto& [v, name] : EnumTraits<E>::names)
                if (v == e) return Value(std::string(name));
            throw ArgumentError("enum value " + std::to_string(static_cast<long long>(e)) +
                                " has no name in its EnumTraits");
        } else {
            return Value(static_cast<std::underlying_type_t<E>>(e));
        }
    }
    static E from_value(const Value& v) {
        if constexpr (detail::NamedEnum<E>) {
            if (auto s = v.if_text()) {
                for (const auto& [e, name] : EnumTraits<E>::names)
                    if (name == *s) return e;
                throw ArgumentError("'" + *s + "' is not among the defined enum values");
            }
            throw_value_conversion(v, "an enum name");
        } else {
            return static_cast<E>(ValueTraits<std::underlying_type_t<E>>::from_value(v));
        }
    }
};

template <class E>
    requires std::is_enum_v<E>
struct TypeFor<E> {
    static TypeEngine get() { return Enum<E>(); }
};

template <class T>
    requires detail::Decorated<T>
struct ValueTraits<T, void> {
    using Impl = typename TypeDecorator<T>::impl;
    static constexpr Value::Kind kind = ValueTraits<Impl>::kind;
    static constexpr bool nullable = false;
    static Value to_value(const T& x) { return ValueTraits<Impl>::to_value(TypeDecorator<T>::process_bind_param(x)); }
    static T from_value(const Value& v) {
        return TypeDecorator<T>::process_result_value(ValueTraits<Impl>::from_value(v));
    }
};

template <class T>
    requires detail::Decorated<T>
struct TypeFor<T> {
    static TypeEngine get() {
        if constexpr (requires { TypeDecorator<T>::type(); }) return TypeDecorator<T>::type();
        else return TypeFor<typename TypeDecorator<T>::impl>::get();
    }
};

}  // namespace athanor
