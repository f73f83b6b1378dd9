// Result and Row: the rows of an executed statement.
//
// A Result streams its rows from the database as they are iterated (it holds the prepared
// statement until exhausted or destroyed). Rows are values: copying a Row copies its data.
// A Result belongs to the thread that executed it.
#pragma once

#include <athanor/core/exc.hpp>
#include <athanor/core/value.hpp>

#include <concepts>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace athanor {

namespace detail {
struct ResultImpl;
}

class Row {
public:
    Row() = default;
    Row(std::shared_ptr<const std::vector<std::string>> keys, std::vector<Value> values)
        : keys_(std::move(keys)), values_(std::move(values)) {}

    std::size_t size() const noexcept { return values_.size(); }
    const Value& operator[](std::size_t i) const;  // throws InvalidRequestError when out of range
    const Value& operator[](std::string_view name) const;
    /// The value converted to T (ArgumentError when it cannot be).
    template <class T, std::integral I>
    T get(I index) const {
        return (*this)[static_cast<std::size_t>(index)].template as<T>();
    }
    template <class T>
    T get(std::string_view name) const {
        return (*this)[name].template as<T>();
    }
    const std::vector<Value>& values() const noexcept { return values_; }
    std::vector<Value>& mutable_values() noexcept { return values_; }
    const std::vector<std::string>& keys() const;
    /// Python-style tuple repr: (1, 'ed').
    std::string repr() const;
    friend bool operator==(const Row& a, const Row& b) { return a.values_ == b.values_; }

private:
    std::shared_ptr<const std::vector<std::string>> keys_;
    std::vector<Value> values_;
};

class Result {
public:
    Result();
    explicit Result(std::shared_ptr<detail::ResultImpl> impl);
    Result(Result&&) noexcept;
    Result& operator=(Result&&) noexcept;
    ~Result();

    /// Column names of the rows (empty for statements that return none).
    const std::vector<std::string>& keys() const;
    bool returns_rows() const noexcept;
    /// Rows changed by INSERT / UPDATE / DELETE (summed over executemany); -1 for SELECT.
    std::int64_t rowcount() const noexcept;
    /// The rowid of the last INSERT.
    std::int64_t lastrowid() const noexcept;
    /// The primary key of the row a single-row INSERT created (generated keys included).
    const std::vector<Value>& inserted_primary_key() const;

    /// The next row, or nullopt when exhausted.
    std::optional<Row> fetchone();
    /// Fast path: the next row's values into `out` (resized); false when exhausted.
    bool fetch_into(std::vector<Value>& out);
    /// Fastest path: views of the next row's values, valid until the next fetch or close.
    bool fetch_views(std::vector<ValueView>& out);
    std::vector<Row> fetchmany(std::size_t n);
    std::vector<Row> all();
    /// The first row (or nullopt); the rest are discarded.
    std::optional<Row> first();
    /// Exactly one row: NoResultFound / MultipleResultsFound otherwise.
    Row one();
    std::optional<Row> one_or_none();
    /// First column of the first row. For std::optional<T>, no row gives nullopt; otherwise no
    /// row is NoResultFound.
    template <class T>
    T scalar() {
        auto r = first();
        if (!r) {
            if constexpr (ValueTraits<T>::nullable) return ValueTraits<T>::from_value(Value());
            throw NoResultFound("No row was found when one was required");
        }
        return r->template get<T>(std::size_t{0});
    }
    template <class T>
    T scalar_one() {
        return one().template get<T>(std::size_t{0});
    }
    /// First column of every row.
    template <class T>
    std::vector<T> scalars() {
        std::vector<T> out;
        std::vector<Value> buf;
        while (fetch_into(buf)) out.push_back(buf.at(0).as<T>());
        return out;
    }
    /// Releases the statement; further fetches return nothing.
    void close() noexcept;

    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = Row;
        using difference_type = std::ptrdiff_t;
        using pointer = const Row*;
        using reference = const Row&;
        iterator() = default;
        explicit iterator(Result* r);
        const Row& operator*() const { return row_; }
        const Row* operator->() const { return &row_; }
        iterator& operator++();
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& a, const iterator& b) { return a.r_ == b.r_; }

    private:
        Result* r_ = nullptr;
        Row row_;
    };
    iterator begin() { return iterator(this); }
    iterator end() { return iterator(); }

private:
    std::shared_ptr<detail::ResultImpl> impl_;
};

}  // namespace athanor
