// Record: the dynamic entity, for programs whose schema is known only at run time (built in
// code, loaded from JSON, or reflected). A Record holds one Value per column of its table and
// is mapped with Registry::map_dynamic(table), so it works with the same Session and Query as
// a C++ struct.
#pragma once

#include <athanor/core/schema.hpp>
#include <athanor/core/value.hpp>

#include <string_view>
#include <vector>

namespace athanor {

class Record {
public:
    /// An empty record (no table); assign one from Record(table).
    Record() = default;
    /// All columns NULL.
    explicit Record(const Table& table);

    const Table& table() const;
    /// Whether the table has a column `name`.
    bool has(std::string_view name) const noexcept;
    /// The value converted to T; ArgumentError for an unknown column or a bad conversion.
    template <class T>
    T get(std::string_view name) const {
        return value(name).as<T>();
    }
    const Value& value(std::string_view name) const;
    /// Sets a column; ArgumentError naming the table and column when there is no such column.
    void set(std::string_view name, Value v);
    /// By column position (the fast path used by the mapper).
    const Value& at(std::size_t position) const { return values_.at(position); }
    Value& at(std::size_t position) { return values_.at(position); }
    const std::vector<Value>& values() const noexcept { return values_; }

private:
    std::size_t position(std::string_view name) const;
    const Table* table_ = nullptr;
    std::vector<Value> values_;
};

}  // namespace athanor
