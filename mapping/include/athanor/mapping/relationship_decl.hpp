// sa::relationship("name", &Owner::member, options...) and its options, for classical mapping
// (MapperBuilder::relationship) and declarative (an item of DeclarativeBase::declare).
#pragma once

#include <athanor/mapping/mapper.hpp>

#include <string>
#include <type_traits>

namespace athanor {

namespace detail {
template <class M>
struct RelationTarget;
template <class T>
struct RelationTarget<Ref<T>> {
    using type = T;
    static constexpr bool collection = false;
};
template <class T>
struct RelationTarget<Collection<T>> {
    using type = T;
    static constexpr bool collection = true;
};
template <class T>
struct RelationTarget<WriteOnly<T>> {
    using type = T;
    static constexpr bool collection = true;
    static constexpr bool write_only = true;
};
template <class RT>
constexpr bool is_write_only() {
    if constexpr (requires { RT::write_only; }) return RT::write_only;
    return false;
}
template <class T, class M>
const RelationshipProperty& relationship_of(M T::*member);
std::string demangle(const char* name);
}  // namespace detail

/// back_populates(&Address::user): the relationship on the other class that mirrors this one.
struct BackPopulatesOpt {
    std::string key;
    std::function<std::string(const Mapper&)> resolve;
};
inline BackPopulatesOpt back_populates(std::string key) { return {std::move(key), {}}; }
template <class T, class M>
BackPopulatesOpt back_populates(M T::*member) {
    return {"", [member](const Mapper& target) -> std::string {
                for (const auto& r : target.declared_relationships())
                    if (auto* m = std::any_cast<M T::*>(&r.member_pointer); m && *m == member) return r.key;
                throw ArgumentError("back_populates: the member of class '" + target.class_name() +
                                    "' is not declared as a relationship");
            }};
}
struct CascadeOpt {
    Cascade cascade;
};
/// cascade("all, delete-orphan"): SQLAlchemy's cascade words.
inline CascadeOpt cascade(std::string_view words) { return {Cascade::parse(words)}; }
struct LazyOpt {
    Lazy lazy;
};
/// lazy(sa::Lazy::selectin): the loading strategy when the query gives none.
inline LazyOpt lazy(Lazy l) { return {l}; }
struct PassiveDeletesOpt {};
/// Deleting the parent leaves the children to the database's ON DELETE (no loading).
inline PassiveDeletesOpt passive_deletes() { return {}; }
struct ViewOnlyOpt {};
/// viewonly(): the relationship only loads; changing it writes nothing and cascades nothing.
inline ViewOnlyOpt viewonly() { return {}; }
struct PostUpdateOpt {};
/// post_update(): the foreign key is written by a second UPDATE after both rows exist (rows that
/// point at each other: INSERT, INSERT, UPDATE), and set to NULL by an UPDATE before a DELETE.
inline PostUpdateOpt post_update() { return {}; }
struct ForeignKeysOpt {
    std::function<std::vector<std::string>(const Mapper& owner, const Mapper& target)> resolve;
};
/// foreign_keys(&Message::sender_id): the column(s) of the foreign key this relationship uses,
/// when more than one foreign key links the two tables.
template <class T, class... M>
ForeignKeysOpt foreign_keys(M T::*... members) {
    return {[=](const Mapper& owner, const Mapper& target) {
        std::vector<std::string> out;
        auto one = [&](auto member) {
            const Mapper& m = owner.type() == std::type_index(typeid(T)) ? owner : target;
            const ColumnProperty* p = m.find_member(member);
            if (!p) throw ArgumentError("foreign_keys: a member of class '" + m.class_name() + "' is not mapped to a column");
            out.push_back(p->column->name());
        };
        (one(members), ...);
        return out;
    }};
}
struct SecondaryOpt {
    const Table* table;
};
/// secondary(post_keywords): a many-to-many Collection through an association table.
inline SecondaryOpt secondary(const Table& association) { return {&association}; }
struct OrderByOpt {
    std::function<std::string(const Mapper&)> resolve;
};
/// order_by(&Address::id): the order of a loaded collection.
template <class T, class M>
OrderByOpt order_by(M T::*member) {
    return {[member](const Mapper& target) -> std::string {
        if (const ColumnProperty* p = target.find_member(member)) return p->key;
        throw ArgumentError("order_by: the member of class '" + target.class_name() + "' is not mapped to a column");
    }};
}

/// A relationship as an expression: sa::attr(&Address::user) == jack, sa::attr(&User::addresses)
/// .any(criterion), .has(criterion), and the ON clause of Query::join(&User::addresses).
class RelationshipAttr {
public:
    explicit RelationshipAttr(const RelationshipProperty& p) : p_(&p) {}
    const RelationshipProperty& property() const noexcept { return *p_; }
    /// referred columns = referring columns ("users.id = addresses.user_id"); many-to-many: both
    /// conditions through the association table.
    ColumnElement join_condition() const;
    /// stmt JOIN target ON the condition (many-to-many: JOIN secondary ON ... JOIN target ON ...).
    Select join_from(const Select& stmt, bool outer = false) const;
    /// The target table (the other side).
    const Table& target_table() const;
    /// Many-to-one: the foreign key columns equal the object's key (IS NULL for nullptr).
    template <class U>
    ColumnElement operator==(const std::shared_ptr<U>& obj) const {
        return compare(obj.get());
    }
    ColumnElement operator==(std::nullptr_t) const { return compare(nullptr); }
    /// One-to-many: EXISTS (SELECT * FROM target WHERE join AND criterion).
    ColumnElement any(const ColumnElement& criterion = ColumnElement()) const;
    /// Many-to-one: EXISTS (SELECT * FROM target WHERE join AND criterion).
    ColumnElement has(const ColumnElement& criterion = ColumnElement()) const;

private:
    ColumnElement compare(const void* obj) const;
    ColumnElement exists_with(const ColumnElement& criterion) const;
    const RelationshipProperty* p_;
};

/// A loader option of Query::options(): sa::selectinload(&User::addresses) and the like, with
/// options for the loaded objects' relationships chained on it:
/// sa::selectinload(&User::posts).selectinload(&Post::keywords).
struct LoaderOption {
    const RelationshipProperty* prop = nullptr;
    Lazy lazy = Lazy::select;
    std::vector<LoaderOption> then{};  // applied to the objects this option loads

    template <class T, class M>
    LoaderOption selectinload(M T::*member) const { return chain(member, Lazy::selectin); }
    template <class T, class M>
    LoaderOption joinedload(M T::*member) const { return chain(member, Lazy::joined); }
    template <class T, class M>
    LoaderOption raiseload(M T::*member) const { return chain(member, Lazy::raise); }
    template <class T, class M>
    LoaderOption noload(M T::*member) const { return chain(member, Lazy::noload); }
    template <class T, class M>
    LoaderOption lazyload(M T::*member) const { return chain(member, Lazy::select); }

private:
    template <class T, class M>
    LoaderOption chain(M T::*member, Lazy l) const {
        LoaderOption out = *this;
        // The deepest option of the path gets the new one.
        LoaderOption* at = &out;
        while (!at->then.empty()) at = &at->then.back();
        at->then.push_back(LoaderOption{&detail::relationship_of(member), l, {}});
        return out;
    }
};

/// A declared relationship of class O (the value sa::relationship() returns).
template <class O>
struct RelationshipDecl {
    RelationshipProperty prop;
};

template <class O, class M, class... Opts>
RelationshipDecl<O> relationship(std::string key, M O::*member, Opts&&... opts) {
    using RT = detail::RelationTarget<std::remove_cvref_t<M>>;
    using T = typename RT::type;
    RelationshipProperty p;
    p.key = std::move(key);
    p.target = std::type_index(typeid(T));
    p.target_name = detail::demangle(typeid(T).name());
    p.collection = RT::collection;
    p.write_only = detail::is_write_only<RT>();
    p.member = [member](void* owner) -> detail::RelationMember* { return &(static_cast<O*>(owner)->*member); };
    p.member_pointer = member;
    [[maybe_unused]] auto apply = [&p](auto&& o) {
        using X = std::remove_cvref_t<decltype(o)>;
        if constexpr (std::is_same_v<X, BackPopulatesOpt>) {
            p.back_populates = o.key;
            p.back_populates_of = o.resolve;
        } else if constexpr (std::is_same_v<X, CascadeOpt>) {
            p.cascade = o.cascade;
        } else if constexpr (std::is_same_v<X, LazyOpt>) {
            p.lazy = o.lazy;
        } else if constexpr (std::is_same_v<X, PassiveDeletesOpt>) {
            p.passive_deletes = true;
        } else if constexpr (std::is_same_v<X, OrderByOpt>) {
            p.order_by = o.resolve;
        } else if constexpr (std::is_same_v<X, PostUpdateOpt>) {
            p.post_update = true;
        } else if constexpr (std::is_same_v<X, ForeignKeysOpt>) {
            p.foreign_keys = o.resolve;
        } else if constexpr (std::is_same_v<X, SecondaryOpt>) {
            p.secondary = o.table;
        } else if constexpr (std::is_same_v<X, ViewOnlyOpt>) {
            p.viewonly = true;
            p.cascade = Cascade{false, false, false, false, false, false};
        } else {
            static_assert(sizeof(X) == 0, "not a relationship() option");
        }
    };
    (apply(std::forward<Opts>(opts)), ...);
    return {std::move(p)};
}

}  // namespace athanor
