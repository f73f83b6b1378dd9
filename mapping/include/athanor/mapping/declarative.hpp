// Declarative, built on the Registry: DeclarativeBase::declare<T>(tablename, mapped_column(...))
// builds the Table in the base's MetaData and maps T with the same MapperBuilder calls a
// classical mapping makes; there is no second mapping path.
#pragma once

#include <athanor/mapping/registry.hpp>

#include <functional>
#include <memory>
#include <type_traits>

namespace athanor {

/// One column of a declarative class: the Column (type from the member unless given) and how
/// to map it.
template <class T>
struct MappedColumn {
    Column column;
    std::function<void(MapperBuilder<T>&, const std::string&)> map;
};

namespace detail {
template <class O>
constexpr bool is_type_engine_v = std::is_base_of_v<TypeEngine, std::remove_cvref_t<O>>;

template <class O>
TypeEngine pick_type(const O& o) {
    if constexpr (is_type_engine_v<O>) return o;
    else return TypeEngine();
}
}  // namespace detail

/// mapped_column("name", &T::member, options...): options are Column options and optionally a
/// type (sa::String(255)); without one the type comes from the member (TypeFor<M>).
template <class T, class M, class... Opts>
MappedColumn<T> mapped_column(std::string name, M T::*member, Opts&&... opts) {
    TypeEngine type;
    // TypeFor<M> only when no type is given, so a member type without one (say an enum of
    // yours) can be mapped with an explicit sa::String(10).
    if constexpr ((detail::is_type_engine_v<Opts> || ...))
        ((detail::is_type_engine_v<Opts> ? void(type = detail::pick_type(opts)) : void()), ...);
    else
        type = TypeFor<std::remove_cvref_t<M>>::get();
    Column col(name, type);
    [[maybe_unused]] auto apply = [&col](auto&& o) {
        if constexpr (!detail::is_type_engine_v<decltype(o)>) col.add(std::forward<decltype(o)>(o));
    };
    (apply(std::forward<Opts>(opts)), ...);
    return {std::move(col), [member](MapperBuilder<T>& b, const std::string& n) { b.column(n, member); }};
}

/// A declarative item naming the version column: sa::version_id_col("version").
struct VersionIdCol {
    std::string column;
};
inline VersionIdCol version_id_col(std::string column) { return {std::move(column)}; }

class DeclarativeBase {
public:
    /// Uses its own registry (SQLAlchemy's declarative_base()).
    DeclarativeBase() = default;
    DeclarativeBase(const DeclarativeBase&) = delete;
    DeclarativeBase& operator=(const DeclarativeBase&) = delete;

    MetaData metadata;
    Registry registry;

    /// Builds table `tablename` from the mapped columns and table-level items
    /// (PrimaryKeyConstraint, UniqueConstraint, ForeignKeyConstraint, Index), then maps T.
    template <class T, class... Items>
    Table& declare(std::string tablename, Items&&... items) {
        std::vector<Column> cols;
        std::vector<std::function<void(MapperBuilder<T>&)>> maps;
        std::vector<std::function<void(Table&)>> extras;
        std::string version;
        auto collect = [&](auto&& item) {
            using I = std::remove_cvref_t<decltype(item)>;
            if constexpr (std::is_same_v<I, MappedColumn<T>>) {
                std::string n = item.column.name();
                maps.push_back([m = item.map, n](MapperBuilder<T>& b) { m(b, n); });
                cols.push_back(item.column);
            } else if constexpr (std::is_same_v<I, Index>) {
                extras.push_back([ix = item](Table& t) { t.add_index(ix); });
            } else if constexpr (std::is_same_v<I, VersionIdCol>) {
                version = item.column;
            } else if constexpr (std::is_same_v<I, RelationshipDecl<T>>) {
                maps.push_back([d = item](MapperBuilder<T>& b) { b.relationship(d); });
            } else {
                extras.push_back([c = item](Table& t) { t.add_constraint(c); });
            }
        };
        (collect(std::forward<Items>(items)), ...);
        Table& t = metadata.add_table(std::make_unique<Table>(std::move(tablename), std::move(cols)));
        bool mapped = false;  // a failure before mapping must not unmap an earlier mapping of T
        try {
            for (auto& e : extras) e(t);
            MapperBuilder<T> b = registry.map_imperatively<T>(t);
            mapped = true;
            for (auto& m : maps) m(b);
            if (!version.empty()) b.version_id_col(version);
        } catch (...) {
            if (mapped) registry.dispose(std::type_index(typeid(T)));
            metadata.remove(t.name());
            throw;
        }
        return t;
    }
};

}  // namespace athanor
