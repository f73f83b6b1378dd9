#include "engine_impl.hpp"
#include <athanor/core/detail/hot.hpp>

#include <athanor/core/exc.hpp>

namespace athanor {

// ---- Row ------------------------------------------------------------------------------------

const Value& Row::operator[](std::size_t i) const {
    if (i >= values_.size())
        throw InvalidRequestError("row index " + std::to_string(i) + " out of range (row has " +
                                  std::to_string(values_.size()) + " columns)");
    return values_[i];
}

const Value& Row::operator[](std::string_view name) const {
    if (keys_)
        for (std::size_t i = 0; i < keys_->size() && i < values_.size(); ++i)
            if ((*keys_)[i] == name) return values_[i];
    throw InvalidRequestError("row has no column named '" + std::string(name) + "'");
}

const std::vector<std::string>& Row::keys() const {
    static const std::vector<std::string> none;
    return keys_ ? *keys_ : none;
}

std::string Row::repr() const { return detail::repr_params(values_); }

// ---- ResultImpl -----------------------------------------------------------------------------

namespace detail {

ResultImpl::~ResultImpl() { release(); }

void ResultImpl::release() noexcept {
    if (!stmt) return;
    stmt->reset();
    stmt->in_use = false;
    stmt = nullptr;
    owned.reset();
    has_row = false;
}

ATHANOR_HOT bool ResultImpl::advance() {
    if (!stmt) return false;
    if (step_pending) {
        step_pending = false;
        bool more;
        try {
            more = stmt->step();
        } catch (...) {
            release();
            throw;
        }
        if (!more) {
            release();
            return false;
        }
    }
    return has_row;
}

void ResultImpl::log_row() {
    std::vector<Value> row;
    stmt->read_row(columns, row);
    if (!logged_cols) {
        std::vector<Value> names(keys->begin(), keys->end());
        conn->engine->log_debug("Col " + repr_params(names));
        logged_cols = true;
    }
    conn->engine->log_debug("Row " + repr_params(row));
}

bool ResultImpl::next(std::vector<Value>& out) {
    if (!advance()) return false;
    stmt->read_row(columns, out);
    if (conn && conn->engine->echo_level >= 2) log_row();
    step_pending = true;
    return true;
}

ATHANOR_HOT bool ResultImpl::next_views(std::vector<ValueView>& out) {
    if (!advance()) return false;
    stmt->read_views(columns, out);
    if (conn && conn->engine->echo_level >= 2) log_row();
    step_pending = true;
    return true;
}

}  // namespace detail

// ---- Result ---------------------------------------------------------------------------------

Result::Result() : impl_(std::make_shared<detail::ResultImpl>()) {}
Result::Result(std::shared_ptr<detail::ResultImpl> impl) : impl_(std::move(impl)) {}
Result::Result(Result&&) noexcept = default;
Result& Result::operator=(Result&&) noexcept = default;
Result::~Result() = default;

const std::vector<std::string>& Result::keys() const {
    static const std::vector<std::string> none;
    return impl_ && impl_->keys ? *impl_->keys : none;
}
bool Result::returns_rows() const noexcept { return impl_ && impl_->returns_rows; }
std::int64_t Result::rowcount() const noexcept { return impl_ ? impl_->rowcount : -1; }
std::int64_t Result::lastrowid() const noexcept { return impl_ ? impl_->lastrowid : 0; }
const std::vector<Value>& Result::inserted_primary_key() const {
    if (!impl_ || impl_->inserted_pk.empty())
        throw InvalidRequestError("inserted_primary_key is only available after a single-row INSERT");
    return impl_->inserted_pk;
}

bool Result::fetch_into(std::vector<Value>& out) { return impl_ && impl_->next(out); }
ATHANOR_HOT bool Result::fetch_views(std::vector<ValueView>& out) { return impl_ && impl_->next_views(out); }

std::optional<Row> Result::fetchone() {
    std::vector<Value> v;
    if (!fetch_into(v)) return std::nullopt;
    return Row(impl_->keys, std::move(v));
}

std::vector<Row> Result::fetchmany(std::size_t n) {
    std::vector<Row> out;
    while (out.size() < n) {
        auto r = fetchone();
        if (!r) break;
        out.push_back(std::move(*r));
    }
    return out;
}

std::vector<Row> Result::all() {
    std::vector<Row> out;
    while (auto r = fetchone()) out.push_back(std::move(*r));
    return out;
}

std::optional<Row> Result::first() {
    auto r = fetchone();
    close();
    return r;
}

Row Result::one() {
    auto r = fetchone();
    if (!r) throw NoResultFound("No row was found when one was required");
    if (fetchone()) {
        close();
        throw MultipleResultsFound("Multiple rows were found when exactly one was required");
    }
    return std::move(*r);
}

std::optional<Row> Result::one_or_none() {
    auto r = fetchone();
    if (r && fetchone()) {
        close();
        throw MultipleResultsFound("Multiple rows were found when one or none was required");
    }
    return r;
}

void Result::close() noexcept {
    if (impl_) impl_->release();
}

Result::iterator::iterator(Result* r) : r_(r) { ++*this; }

Result::iterator& Result::iterator::operator++() {
    if (!r_) return *this;
    if (!r_->fetch_into(row_.mutable_values())) {
        r_ = nullptr;
        return *this;
    }
    if (row_.keys().empty() && r_->impl_->keys) row_ = Row(r_->impl_->keys, std::move(row_.mutable_values()));
    return *this;
}

}  // namespace athanor
