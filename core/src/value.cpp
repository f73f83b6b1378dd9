#include <athanor/core/exc.hpp>
#include <athanor/core/value.hpp>

#include <charconv>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

namespace athanor {

DBAPIError::DBAPIError(const std::string& kind, const std::string& driver_message,
                       std::string statement, std::string params_repr, int extended_code)
    : Error("(sqlite3." + kind + ") " + driver_message + "\n[SQL: " + statement +
            "]\n[parameters: " + params_repr + "]"),
      statement_(std::move(statement)),
      params_(std::move(params_repr)),
      orig_(driver_message),
      code_(extended_code) {}

DBAPIError::DBAPIError(const std::string& kind, const std::string& driver_message,
                       std::string statement, std::string params_repr, std::string sqlstate,
                       const std::string& driver)
    : Error("(" + driver + "." + kind + ") " + driver_message + "\n[SQL: " + statement +
            "]\n[parameters: " + params_repr + "]"),
      statement_(std::move(statement)),
      params_(std::move(params_repr)),
      orig_(driver_message),
      code_(0),
      sqlstate_(std::move(sqlstate)) {}

std::string_view kind_name(Value::Kind k) noexcept {
    switch (k) {
        case Value::Kind::null: return "null";
        case Value::Kind::integer: return "integer";
        case Value::Kind::real: return "real";
        case Value::Kind::text: return "text";
        case Value::Kind::blob: return "blob";
    }
    return "?";
}

namespace detail {
void throw_number_range(const std::string& what, std::string_view type) {
    throw ArgumentError("the number " + what + " does not fit in " + std::string(type) + " without loss");
}
std::string_view integer_type_name(std::size_t size, bool is_signed) noexcept {
    switch (size) {
        case 1: return is_signed ? "an 8-bit integer" : "an unsigned 8-bit integer";
        case 2: return is_signed ? "a 16-bit integer" : "an unsigned 16-bit integer";
        case 4: return is_signed ? "a 32-bit integer" : "an unsigned 32-bit integer";
        default: return is_signed ? "a 64-bit integer" : "an unsigned 64-bit integer";
    }
}
}  // namespace detail

void throw_value_conversion(const Value& v, std::string_view what) {
    throw ArgumentError("cannot convert " + std::string(kind_name(v.kind())) + " value " +
                        v.repr() + " to " + std::string(what));
}

std::int64_t Value::as_int() const {
    if (auto p = if_int()) return *p;
    throw_value_conversion(*this, "an integer");
}
double Value::as_double() const {
    if (auto p = if_double()) return *p;
    if (auto p = if_int()) return static_cast<double>(*p);
    throw_value_conversion(*this, "a double");
}
const std::string& Value::as_text() const {
    if (auto p = if_text()) return *p;
    throw_value_conversion(*this, "a string");
}
const Blob& Value::as_blob() const {
    if (auto p = if_blob()) return *p;
    throw_value_conversion(*this, "a blob");
}

namespace {
// Python's repr() of a str: single quotes unless the text has ' and no ", escapes.
std::string py_str_repr(const std::string& s) {
    bool has_sq = s.find('\'') != std::string::npos;
    bool has_dq = s.find('"') != std::string::npos;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    std::string out;
    out.reserve(s.size() + 2);
    out += q;
    for (unsigned char c : s) {
        switch (c) {
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c == static_cast<unsigned char>(q)) {
                    out += '\\';
                    out += static_cast<char>(c);
                } else if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\x%02x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += q;
    return out;
}

std::string py_bytes_repr(const Blob& b) {
    std::string out = "b'";
    for (std::uint8_t c : b) {
        if (c == '\\') out += "\\\\";
        else if (c == '\'') out += "\\'";
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c < 0x20 || c >= 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else out += static_cast<char>(c);
    }
    out += '\'';
    return out;
}

std::string py_float_repr(double d) {
    if (d != d) return "nan";
    if (d == std::numeric_limits<double>::infinity()) return "inf";
    if (d == -std::numeric_limits<double>::infinity()) return "-inf";
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
    std::string s(buf, end);
    if (s.find_first_of(".en") == std::string::npos) s += ".0";
    return s;
}
}  // namespace

std::string Value::repr() const {
    switch (kind()) {
        case Kind::null: return "None";
        case Kind::integer: return std::to_string(*if_int());
        case Kind::real: return py_float_repr(*if_double());
        case Kind::text: return py_str_repr(*if_text());
        case Kind::blob: return py_bytes_repr(*if_blob());
    }
    return "?";
}

// Each alternative built in the returned storage itself (variant::emplace would build a text
// aside and move it in, to stay valid if building threw).
Value::Storage Value::storage_of(const ValueView& v) {
    switch (v.kind) {
        case Kind::null: break;
        case Kind::integer: return Storage(std::in_place_type<std::int64_t>, v.i);
        case Kind::real: return Storage(std::in_place_type<double>, v.d);
        case Kind::text: return Storage(std::in_place_type<std::string>, v.bytes);
        case Kind::blob: return Storage(std::in_place_type<Blob>, v.bytes.begin(), v.bytes.end());
    }
    return Storage();
}

Value ValueView::to_value() const { return Value(*this); }

// ---- JSON, Date, DateTime -------------------------------------------------------------------

namespace {
// Deeper documents are refused: nlohmann's dump() and comparison recurse once per level, so a
// hostile document 100k levels deep would overflow the stack. SQLite's own JSON functions stop
// at 1000 levels.
constexpr std::size_t kMaxJsonDepth = 1000;

void check_json_depth(const nlohmann::json& root) {
    std::vector<std::pair<const nlohmann::json*, std::size_t>> stack{{&root, 1}};
    while (!stack.empty()) {
        auto [j, depth] = stack.back();
        stack.pop_back();
        if (!j->is_structured()) continue;
        if (depth > kMaxJsonDepth)
            throw ArgumentError("JSON value nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
        for (const auto& child : *j) stack.emplace_back(&child, depth + 1);
    }
}
}  // namespace

Value ValueTraits<nlohmann::json>::to_value(const nlohmann::json& j) {
    if (j.is_null()) return Value();
    check_json_depth(j);
    try {
        return Value(j.dump());
    } catch (const nlohmann::json::exception& e) {
        throw ArgumentError("JSON value cannot be stored: " + std::string(e.what()));
    }
}
nlohmann::json ValueTraits<nlohmann::json>::from_value(const Value& v) {
    if (v.is_null()) return nullptr;
    if (auto s = v.if_text()) {
        try {
            auto limit = [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
                if (static_cast<std::size_t>(depth) > kMaxJsonDepth)
                    throw ArgumentError("JSON text nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
                return true;
            };
            return nlohmann::json::parse(*s, limit);
        } catch (const nlohmann::json::exception& e) {
            throw ArgumentError("invalid JSON text in a JSON column: " + std::string(e.what()));
        }
    }
    if (auto i = v.if_int()) return *i;
    if (auto d = v.if_double()) return *d;
    throw_value_conversion(v, "JSON");
}

namespace {
using namespace std::chrono;

// Reads exactly `n` digits at s[pos...]; false if any is not a digit.
bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = 0; i < n; ++i) {
        char c = s[pos + i];
        if (c < '0' || c > '9') return false;
        out = out * 10 + (c - '0');
    }
    return true;
}

// "YYYY-MM-DD" at the start of s, a real calendar date in years 1..9999.
bool parse_ymd(std::string_view s, year_month_day& out) {
    int y, m, d;
    if (!digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, m) || s[7] != '-' ||
        !digits(s, 8, 2, d))
        return false;
    out = year_month_day{year(y), month(static_cast<unsigned>(m)), day(static_cast<unsigned>(d))};
    return y >= 1 && out.ok();
}

void check_date(const year_month_day& d) {
    if (!d.ok() || static_cast<int>(d.year()) < 1 || static_cast<int>(d.year()) > 9999)
        throw ArgumentError("invalid date (year " + std::to_string(static_cast<int>(d.year())) + ", month " +
                            std::to_string(static_cast<unsigned>(d.month())) + ", day " +
                            std::to_string(static_cast<unsigned>(d.day())) +
                            "): dates must exist in the calendar, years 1 to 9999");
}
}  // namespace

Value ValueTraits<std::chrono::year_month_day>::to_value(const std::chrono::year_month_day& d) {
    check_date(d);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(d.year()),
                  static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()));
    return Value(std::string(buf));
}
std::chrono::year_month_day ValueTraits<std::chrono::year_month_day>::from_value(const Value& v) {
    auto s = v.if_text();
    if (!s) throw_value_conversion(v, "a Date");
    year_month_day r;
    if (s->size() != 10 || !parse_ymd(*s, r))
        throw ArgumentError("invalid Date text '" + *s + "' (expected YYYY-MM-DD, a real date)");
    return r;
}

std::string format_datetime(datetime t) {
    static const auto lo = sys_days(year(1) / January / 1);
    static const auto hi = sys_days(year(10000) / January / 1);
    if (t < lo || t >= hi)
        throw ArgumentError("datetime out of range: DateTime values are years 1 to 9999");
    auto days = floor<std::chrono::days>(t);
    year_month_day ymd{days};
    hh_mm_ss<microseconds> hms{t - days};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02d:%02d:%02d.%06lld",
                  static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                  static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                  static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()),
                  static_cast<long long>(hms.subseconds().count()));
    return buf;
}

datetime parse_datetime(std::string_view s) {
    auto bad = [&]() -> datetime {
        throw ArgumentError("invalid DateTime text '" + std::string(s) +
                            "' (expected YYYY-MM-DD[ HH:MM:SS[.ffffff]], a real date and time)");
    };
    year_month_day ymd;
    if (!parse_ymd(s, ymd)) return bad();
    if (s.size() == 10) return sys_days(ymd);
    int hh, mi, ss;
    if ((s[10] != ' ' && s[10] != 'T') || !digits(s, 11, 2, hh) || s.size() < 19 || s[13] != ':' ||
        !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, ss) || hh > 23 || mi > 59 || ss > 59)
        return bad();
    long long us = 0;
    if (s.size() > 19) {
        if (s[19] != '.' || s.size() == 20 || s.size() > 26) return bad();
        int digit;
        for (std::size_t i = 20; i < 26; ++i) {
            if (i < s.size()) {
                if (!digits(s, i, 1, digit)) return bad();
            } else {
                digit = 0;
            }
            us = us * 10 + digit;
        }
    }
    return sys_days(ymd) + hours(hh) + minutes(mi) + seconds(ss) + microseconds(us);
}

// ---- Params ---------------------------------------------------------------------------------

Params::Params(std::initializer_list<value_type> items) {
    items_.reserve(items.size());
    for (const auto& [k, v] : items) set(k, v);
}

const Value& Params::at(std::string_view name) const {
    if (auto p = find(name)) return *p;
    throw ArgumentError("no parameter named '" + std::string(name) + "'");
}

Value& Params::operator[](std::string_view name) {
    if (Value* v = find_mutable(name)) return *v;
    items_.emplace_back(std::string(name), Value());
    return items_.back().second;
}

bool Params::erase(std::string_view name) {
    for (auto it = items_.begin(); it != items_.end(); ++it)
        if (it->first == name) {
            items_.erase(it);
            return true;
        }
    return false;
}

bool operator==(const Params& a, const Params& b) {
    if (a.size() != b.size()) return false;
    for (const auto& [k, v] : a) {
        const Value* o = b.find(k);
        if (!o || !(*o == v)) return false;
    }
    return true;
}

}  // namespace athanor
