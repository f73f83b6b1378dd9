// Registry: the explicit mapper registry (SQLAlchemy's registry()). map_imperatively<T>(table)
// declares how class T maps onto a table; Declarative is built on this same API.
//
// A class is mapped once, in one registry (a second mapping, here or in another live registry,
// is an ArgumentError). A mapping whose column() call fails is removed again, so a corrected
// mapping can follow. mapper_of<T>() finds the mapper and checks it is complete; an unmapped
// class throws UnmappedClassError. A registry is filled at start-up, then read. A Session that
// still tracks objects of a registry destroyed under it raises InvalidRequestError on its next
// use (rollback() and close() still work), never touches the freed mappers.
#pragma once

#include <athanor/core/exc.hpp>
#include <athanor/mapping/detail/object_pool.hpp>
#include <athanor/mapping/mapper.hpp>
#include <athanor/mapping/relationship_decl.hpp>
#include <athanor/mapping/record.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <cstring>
#include <cstddef>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>

namespace athanor {

namespace detail {
std::string demangle(const char* name);

// Checks at mapping time that a member of type M can live in `col`.
void check_member_type(const Column& col, Value::Kind member_kind, bool member_nullable,
                       const std::string& class_name);
// ArgumentError: a NULL of `col` cannot go into a non-optional member.
[[noreturn]] void throw_null_into_member(const Column& col);

// The byte offset of a data member in its class, where the ABI defines a pointer to data
// member as that offset (the Itanium C++ ABI of GCC and Clang); nullopt elsewhere.
template <class T, class M>
std::optional<std::ptrdiff_t> member_offset(M T::*member) noexcept {
#if defined(__GXX_ABI_VERSION)
    static_assert(sizeof(member) == sizeof(std::ptrdiff_t));
    std::ptrdiff_t off;
    std::memcpy(&off, &member, sizeof off);
    if (off < 0) return std::nullopt;  // the null member pointer
    return off;
#else
    (void)member;
    return std::nullopt;
#endif
}
/// Registries destroyed in this process (Registry::destroyed_count()); written by ~Registry.
inline std::atomic<std::uint64_t> registries_destroyed{0};
}  // namespace detail

class Registry;

/// Returned by map_imperatively<T>(): add columns with .column(...).
template <class T>
class MapperBuilder {
public:
    MapperBuilder(Mapper& m, Registry* owner = nullptr) : m_(&m), owner_(owner) {}  // NOLINT

    /// Maps column `name` to a data member; the member's type is checked against the column's.
    template <class M>
    MapperBuilder& column(std::string_view name, M T::*member) {
        static_assert(ValueConvertible<M>, "the member's type has no ValueTraits conversion");
        using Traits = ValueTraits<M>;
        ColumnProperty p = checked_property<Traits>(name);
        const Column& col = *p.column;
        p.get = [member](const void* obj) { return Traits::to_value(static_cast<const T*>(obj)->*member); };
        if constexpr (std::is_same_v<M, std::string>)
            p.read_into = [member](const void* obj, Value& v) { detail::read_text(static_cast<const T*>(obj)->*member, v); };
        p.set = [member, &col](void* obj, const Value& v) {
            (void)col;  // named only for a member that cannot hold NULL (clang warns otherwise)
            if constexpr (!Traits::nullable)
                if (v.is_null()) detail::throw_null_into_member(col);
            static_cast<T*>(obj)->*member = Traits::from_value(v);
        };
        p.equals = [member](const void* obj, const ValueView& v) {
            return value_equals(static_cast<const T*>(obj)->*member, v);
        };
        p.set_view = [member, &col](void* obj, const ValueView& v) {
            (void)col;
            if constexpr (!Traits::nullable)
                if (v.kind == Value::Kind::null) detail::throw_null_into_member(col);
            if constexpr (std::is_same_v<M, std::string>) {
                if (v.kind == Value::Kind::text) {
                    detail::assign_text(static_cast<T*>(obj)->*member, v.bytes);
                    return;
                }
            }
            static_cast<T*>(obj)->*member = value_from_view<M>(v);
        };
        p.member = member;
        if constexpr (std::is_same_v<M, std::int64_t> || std::is_same_v<M, std::string>) {
            if (auto off = detail::member_offset(member)) {
                p.direct = std::is_same_v<M, std::string> ? ColumnProperty::Direct::text : ColumnProperty::Direct::int64;
                p.offset = *off;
            }
        }
        add(std::move(p));
        return *this;
    }

    /// Maps column `name` through user accessors: getter(const T&) -> V, setter(T&, V).
    template <class G, class S>
        requires std::is_invocable_v<G, const T&>
    MapperBuilder& column(std::string_view name, G getter, S setter) {
        using V = std::remove_cvref_t<std::invoke_result_t<G, const T&>>;
        static_assert(ValueConvertible<V>, "the getter's return type has no ValueTraits conversion");
        static_assert(std::is_invocable_v<S, T&, V>, "the setter must accept (T&, value)");
        using Traits = ValueTraits<V>;
        ColumnProperty p = checked_property<Traits>(name);
        const Column& col = *p.column;
        p.get = [getter](const void* obj) { return Traits::to_value(getter(*static_cast<const T*>(obj))); };
        p.set = [setter, &col](void* obj, const Value& v) {
            if constexpr (!Traits::nullable)
                if (v.is_null()) detail::throw_null_into_member(col);
            setter(*static_cast<T*>(obj), Traits::from_value(v));
        };
        add(std::move(p));
        return *this;
    }

    /// version_id_col=: the mapped integer member that versions rows (optimistic concurrency).
    template <class M>
    MapperBuilder& version_id_col(M T::*member) {
        if (!m_) throw ArgumentError("the mapping of this class failed earlier and was removed");
        const ColumnProperty* p = m_->find_member(member);
        if (!p) throw ArgumentError("version_id_col: the member is not mapped to a column (map it with column() first)");
        m_->set_version_column(p->key);
        return *this;
    }
    /// The same by column name.
    MapperBuilder& version_id_col(std::string_view column) {
        if (!m_) throw ArgumentError("the mapping of this class failed earlier and was removed");
        m_->set_version_column(column);
        return *this;
    }

    /// relationship(...): a Ref or Collection member related to another mapped class.
    MapperBuilder& relationship(RelationshipDecl<T> decl) {
        if (!m_) throw ArgumentError("the mapping of this class failed earlier and was removed");
        try {
            m_->add_relationship(std::move(decl.prop));
        } catch (...) {
            abandon();
            throw;
        }
        return *this;
    }
    template <class M, class... Opts>
    MapperBuilder& relationship(std::string key, M T::*member, Opts&&... opts) {
        return relationship(athanor::relationship(std::move(key), member, std::forward<Opts>(opts)...));
    }

    /// The mapper being built (InvalidRequestError once a failed column() removed it).
    Mapper& mapper() const {
        if (!m_) throw InvalidRequestError("this mapping failed and was removed");
        return *m_;
    }

private:
    // The column `name`, checked against the C++ type described by Traits.
    template <class Traits>
    ColumnProperty property_for(std::string_view name) const {
        if (!m_)
            throw ArgumentError("the mapping of class '" + detail::demangle(typeid(T).name()) +
                                "' failed earlier and was removed; start again with map_imperatively()");
        const Column& col = m_->table().column(name);
        detail::check_member_type(col, Traits::kind, Traits::nullable, m_->class_name());
        ColumnProperty p;
        p.column = &col;
        p.key = col.name();
        return p;
    }

    // A failed column() unmaps the class, so no half-built mapper stays registered.
    template <class Traits>
    ColumnProperty checked_property(std::string_view name) {
        try {
            return property_for<Traits>(name);
        } catch (...) {
            abandon();
            throw;
        }
    }
    void add(ColumnProperty p) {
        try {
            m_->add_property(std::move(p));
        } catch (...) {
            abandon();
            throw;
        }
    }
    void abandon();

    Mapper* m_;
    Registry* owner_;
};

class Registry {
public:
    Registry();
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    /// mapper(T, table): declares the mapping of T onto `table`. T must be default-constructible.
    template <class T>
    MapperBuilder<T> map_imperatively(const Table& table) {
        static_assert(std::is_default_constructible_v<T>,
                      "athanor: a mapped class must be default-constructible (the mapper's factory "
                      "creates instances when loading rows)");
        static_assert(!std::is_same_v<T, Record>, "map Record with map_dynamic(table)");
        return MapperBuilder<T>(add(std::make_unique<Mapper>(
                                    table, std::type_index(typeid(T)), detail::demangle(typeid(T).name()),
                                    [] { return std::static_pointer_cast<void>(std::allocate_shared<T>(detail::PoolAllocator<T>{})); }, false)),
                                this);
    }

    /// Maps the dynamic Record onto `table` (one mapper per table).
    Mapper& map_dynamic(const Table& table);

    /// The configured mapper of T; UnmappedClassError if T is not mapped here.
    template <class T>
    const Mapper& mapper_of() const {
        return checked(find(std::type_index(typeid(T))), detail::demangle(typeid(T).name()));
    }
    template <class T>
    Mapper& mapper_of() {
        return const_cast<Mapper&>(static_cast<const Registry*>(this)->mapper_of<T>());
    }
    /// The Record mapper of a table; UnmappedClassError if the table has none.
    const Mapper& dynamic_mapper(std::string_view table) const;

    const Mapper* find(std::type_index type) const noexcept;
    const Mapper* find_dynamic(std::string_view table) const noexcept;
    /// Forgets the mapping of a type (SQLAlchemy's registry.dispose() for one class).
    void dispose(std::type_index type);
    /// Every mapper of this registry.
    std::vector<const Mapper*> mappers() const;

    /// Every live registry (for attr()).
    static std::vector<const Registry*> all();

    /// True while this registry exists: sessions keep it to detect a registry destroyed under
    /// them.
    std::shared_ptr<const std::atomic<bool>> life() const noexcept { return life_; }
    /// How many registries have been destroyed in this process: a session re-checks its
    /// registries' life only when this changed (one load on the hot path, in line).
    static std::uint64_t destroyed_count() noexcept {
        return detail::registries_destroyed.load(std::memory_order_acquire);
    }

private:
    Mapper& add(std::unique_ptr<Mapper> m);
    static const Mapper& checked(const Mapper* m, const std::string& what);

    mutable std::mutex mutex_;
    std::shared_ptr<std::atomic<bool>> life_ = std::make_shared<std::atomic<bool>>(true);
    std::unordered_map<std::type_index, std::unique_ptr<Mapper>> by_type_;
    std::unordered_map<std::string, std::unique_ptr<Mapper>> dynamic_;
};

template <class T>
void MapperBuilder<T>::abandon() {
    if (owner_ && m_) owner_->dispose(m_->type());
    m_ = nullptr;
}

/// The process-wide registry used by sa::mapper<T>(table) and declarative bases by default.
Registry& default_registry();

/// mapper(T, table) on default_registry().
template <class T>
MapperBuilder<T> mapper(const Table& table) {
    return default_registry().map_imperatively<T>(table);
}

namespace detail {
template <class T, class M>
const RelationshipProperty& relationship_of(M T::*member) {
    for (const Registry* r : Registry::all())
        if (const Mapper* m = r->find(std::type_index(typeid(T))))
            if (const RelationshipProperty* p = m->find_relationship_member(member)) return *p;
    throw UnmappedClassError("member of class '" + detail::demangle(typeid(T).name()) +
                             "' is not a relationship of any mapper");
}
}  // namespace detail

/// A relationship member as an expression (see RelationshipAttr).
template <class T, class U>
RelationshipAttr attr(Ref<U> T::*member) {
    return RelationshipAttr(detail::relationship_of(member));
}
template <class T, class U>
RelationshipAttr attr(Collection<U> T::*member) {
    return RelationshipAttr(detail::relationship_of(member));
}
template <class T, class U>
RelationshipAttr attr(WriteOnly<U> T::*member) {
    return RelationshipAttr(detail::relationship_of(member));
}

/// Loader options (Query::options): load a relationship of the queried objects with one extra
/// SELECT ... WHERE key IN (...) per 500 parents (selectinload), in the query itself through a
/// LEFT OUTER JOIN (joinedload), refuse lazy loads (raiseload), or never load it (noload).
template <class T, class M>
LoaderOption selectinload(M T::*member) {
    return {&detail::relationship_of(member), Lazy::selectin, {}};
}
template <class T, class M>
LoaderOption joinedload(M T::*member) {
    return {&detail::relationship_of(member), Lazy::joined, {}};
}
template <class T, class M>
LoaderOption raiseload(M T::*member) {
    return {&detail::relationship_of(member), Lazy::raise, {}};
}
template <class T, class M>
LoaderOption noload(M T::*member) {
    return {&detail::relationship_of(member), Lazy::noload, {}};
}
template <class T, class M>
LoaderOption lazyload(M T::*member) {
    return {&detail::relationship_of(member), Lazy::select, {}};
}

/// The column expression for a mapped member: attr(&User::name) == "ed". Searches every
/// registry; UnmappedClassError when the member is not mapped anywhere.
template <class T, class M>
ColumnElement attr(M T::*member) {
    for (const Registry* r : Registry::all())
        if (const Mapper* m = r->find(std::type_index(typeid(T))))
            if (const ColumnProperty* p = m->find_member(member)) return p->column->expr();
    throw UnmappedClassError("member of class '" + detail::demangle(typeid(T).name()) +
                             "' is not mapped to any column");
}

}  // namespace athanor
