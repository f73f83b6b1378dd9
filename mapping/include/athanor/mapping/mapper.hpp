// Mapper: how one C++ class (or the dynamic Record) maps onto one Table.
//
// A mapper holds, per mapped column, an accessor pair (read the member as a Value, write a Value
// into the member) built once when the mapping is declared, indexed by position so the session
// reads and writes objects with no string lookups. Columns of the table left unmapped are
// neither loaded nor written.
//
// Mappers are created by a Registry and live as long as it. Configure them before use; after
// that they are read-only and may be shared between threads (event listeners run on the thread
// that flushes).
#pragma once

#include <athanor/core/custom_types.hpp>
#include <athanor/mapping/relationship.hpp>
#include <athanor/core/schema.hpp>
#include <athanor/core/selectable.hpp>
#include <athanor/core/value.hpp>
#include <athanor/core/detail/bytes_equal.hpp>

#include <any>
#include <cstddef>
#include <cstdint>
#include <array>
#include <functional>
#include <mutex>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <typeindex>
#include <vector>

namespace athanor {

/// One mapped column: where it is in the table and how to reach it in an object.
struct ColumnProperty {
    const Column* column = nullptr;
    std::string key;                                  // the column name
    std::function<Value(const void*)> get;            // object -> Value
    /// object -> an existing Value, reusing its text buffer (no allocation when it fits);
    /// empty where get() is all there is.
    std::function<void(const void*, Value&)> read_into;
    std::function<void(void*, const Value&)> set;     // Value -> object (throws ArgumentError)
    std::function<bool(const void*, const ValueView&)> equals;  // object's value == stored one
    std::function<void(void*, const ValueView&)> set_view;      // stored value -> object
    std::any member;                                  // the member pointer, for attr()
    /// A plain std::int64_t or std::string data member is also reached directly, at its byte
    /// offset in the object (loads, dirty checks and flushes of the common columns make no
    /// call through the accessors above; they behave the same). none: the accessors only.
    enum class Direct : std::uint8_t { none, int64, text };
    Direct direct = Direct::none;
    std::ptrdiff_t offset = 0;
};

namespace detail {
/// m = text, in m's buffer when the text fits, else in a string built in place at its exact
/// size; on bad_alloc m is left empty.
inline void assign_text(std::string& m, std::string_view text) {
    if (text.size() <= m.capacity()) {
        m.assign(text.data(), text.size());
        return;
    }
    // Not assign() (it rounds the buffer up) nor a temporary moved in (reading back the 16
    // bytes just written stalls the CPU).
    std::destroy_at(&m);
    try {
        std::construct_at(&m, text);
    } catch (...) {
        std::construct_at(&m);
        throw;
    }
}
/// v = Value(s), in v's buffer when v holds text already (a flush's recycled row).
inline void read_text(const std::string& s, Value& v) {
    if (auto t = const_cast<std::string*>(v.if_text())) t->assign(s);
    else v = Value(s);
}

/// Whether the member of `p` in `obj` equals the stored value `v` (p.equals, without the call
/// for a direct member).
inline bool column_equals(const ColumnProperty& p, const void* obj, const ValueView& v) {
    const char* at = static_cast<const char*>(obj) + p.offset;
    switch (p.direct) {
        case ColumnProperty::Direct::int64:
            return v.kind == Value::Kind::integer && v.i == *reinterpret_cast<const std::int64_t*>(at);
        case ColumnProperty::Direct::text:
            return v.kind == Value::Kind::text && bytes_equal(v.bytes, *reinterpret_cast<const std::string*>(at));
        case ColumnProperty::Direct::none: break;
    }
    return p.equals(obj, v);
}
/// Writes the stored value `v` straight into p's member when it is a direct member and `v` is of
/// its kind; false where the accessors must do it (other kinds, NULL, conversions).
inline bool set_direct(const ColumnProperty& p, void* obj, const ValueView& v) {
    char* at = static_cast<char*>(obj) + p.offset;
    if (p.direct == ColumnProperty::Direct::int64 && v.kind == Value::Kind::integer) {
        *reinterpret_cast<std::int64_t*>(at) = v.i;
        return true;
    }
    if (p.direct == ColumnProperty::Direct::text && v.kind == Value::Kind::text) {
        assign_text(*reinterpret_cast<std::string*>(at), v.bytes);
        return true;
    }
    return false;
}
/// p.set(obj, v), without the call for a direct member given a value of its kind (a flush
/// writing a generated key or a default back). Throws as p.set does.
inline void column_set(const ColumnProperty& p, void* obj, const Value& v) {
    if (!set_direct(p, obj, ValueView::of(v))) p.set(obj, v);
}
}  // namespace detail

enum class MapperEvent : std::uint8_t {
    before_insert,
    after_insert,
    before_update,
    after_update,
    before_delete,
    after_delete,
};
constexpr std::size_t kMapperEventCount = 6;

class Mapper {
public:
    using Listener = std::function<void(const Mapper&, void* target)>;

    Mapper(const Table& table, std::type_index type, std::string class_name,
           std::function<std::shared_ptr<void>()> factory, bool dynamic);

    const Table& table() const noexcept { return *table_; }
    std::type_index type() const noexcept { return type_; }
    const std::string& class_name() const noexcept { return class_name_; }
    /// Mapped columns, in table order.
    const std::vector<ColumnProperty>& columns() const noexcept { return props_; }
    /// Indexes into columns() of the primary key, in key order.
    const std::vector<std::size_t>& primary_key() const noexcept { return pk_; }
    /// The mapped column for `name`, or nullptr.
    const ColumnProperty* find(std::string_view name) const noexcept;
    /// Index into columns() of `name`, or -1.
    int index_of(std::string_view name) const noexcept {
        // In line, short names compared without a call (a filter_by() lookup resolves its names
        // on every call).
        const ColumnProperty* p = props_.data();
        const std::size_t n = props_.size();
        for (std::size_t i = 0; i < n; ++i)
            if (detail::bytes_equal(p[i].key, name)) return static_cast<int>(i);
        return -1;
    }
    bool dynamic() const noexcept { return dynamic_; }
    /// Optimistic concurrency (SQLAlchemy's version_id_col): the mapped integer column whose
    /// value is 1 at INSERT and bumped by every UPDATE, and which every UPDATE and DELETE
    /// requires unchanged in its WHERE clause (StaleDataError when another writer changed it).
    void set_version_column(std::string_view name);
    /// Index into columns() of the version column, or -1.
    int version_index() const noexcept { return version_index_; }

    /// Checks the mapping is complete (every primary key column mapped); ArgumentError if not.
    /// Called by the registry when the mapper is first looked up for use.
    void configure() const;

    /// A new default-constructed instance.
    std::shared_ptr<void> create() const { return factory_(); }
    /// The primary key values of `obj` (its identity within the mapper).
    std::vector<Value> identity(const void* obj) const;
    /// Reads every mapped column of `obj`.
    void read(const void* obj, std::vector<Value>& out) const;
    /// Writes `values` (one per mapped column, in columns() order) into `obj`.
    void write(void* obj, const std::vector<Value>& values) const;
    /// Writes one stored value per mapped column into `obj` (the load path).
    void write(void* obj, const ValueView* values) const;
    /// Each mapped column's value in a default-constructed instance (0, "", false, NULL): a
    /// member still holding it is "not set", so a column default applies at INSERT.
    const std::vector<Value>& initial_values() const;

    /// The column for the member pointer, or nullptr.
    template <class T, class M>
    const ColumnProperty* find_member(M T::*member) const noexcept {
        for (const auto& p : props_)
            if (auto* m = std::any_cast<M T::*>(&p.member); m && *m == member) return &p;
        return nullptr;
    }

    /// SELECT of the mapped columns (built once; its compiled form is shared by all sessions).
    const Select& select_all() const;
    /// select_all() WHERE each primary key column = bindparam("pk0"), "pk1", ...
    const Select& select_by_pk() const;

    void listen(MapperEvent e, Listener fn);
    /// Runs the listeners of `e` for `target` (the session calls this during flush).
    void dispatch(MapperEvent e, void* target) const;
    bool has_listeners(MapperEvent e) const noexcept {
        return !listeners_[static_cast<std::size_t>(e)].empty();
    }

    /// Used by MapperBuilder.
    void add_property(ColumnProperty p);
    void add_relationship(RelationshipProperty r);
    /// Relationships, resolved (target mapper, foreign key pairs, back_populates) on first use.
    const std::vector<RelationshipProperty>& relationships() const;
    const RelationshipProperty* find_relationship(std::string_view key) const;
    bool has_relationships() const noexcept { return !rels_.empty(); }
    /// As declared, not resolved (for resolving the other side of a pair).
    const std::vector<RelationshipProperty>& declared_relationships() const noexcept { return rels_; }
    template <class T, class M>
    const RelationshipProperty* find_relationship_member(M T::*member) const {
        for (const auto& r : relationships())
            if (auto* m = std::any_cast<M T::*>(&r.member_pointer); m && *m == member) return &r;
        return nullptr;
    }

private:
    const Table* table_;
    std::type_index type_;
    std::string class_name_;
    std::function<std::shared_ptr<void>()> factory_;
    bool dynamic_;
    int version_index_ = -1;
    std::vector<ColumnProperty> props_;
    std::vector<std::size_t> pk_;
    std::array<std::vector<Listener>, kMapperEventCount> listeners_;
    mutable std::once_flag statements_once_;
    mutable std::optional<Select> select_all_;
    mutable std::optional<Select> select_by_pk_;
    std::vector<RelationshipProperty> rels_;
    mutable std::once_flag rels_once_;
    void resolve_relationships() const;
    mutable std::once_flag initial_once_;
    mutable std::vector<Value> initial_;
    void build_statements() const;
};

/// Typed event listener: listen<User>(mapper, MapperEvent::before_insert, [](User& u) {...}).
template <class T, class F>
void listen(Mapper& m, MapperEvent e, F fn) {
    m.listen(e, [fn = std::move(fn)](const Mapper&, void* target) { fn(*static_cast<T*>(target)); });
}

}  // namespace athanor
