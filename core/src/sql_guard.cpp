#include "sql_guard.hpp"

#include <athanor/core/exc.hpp>

#include <array>
#include <cctype>

namespace athanor::detail {

namespace {
bool is_ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || static_cast<unsigned char>(c) >= 0x80; }
std::string quoted(std::string_view s) {
    std::string out = "'";
    for (char c : s.substr(0, 200)) out += c == '\0' ? '?' : c;
    return out + (s.size() > 200 ? "...'" : "'");
}
}  // namespace

std::string checked_referential_action(std::string_view action, std::string_view clause) {
    if (action.empty()) return "";
    std::string up;
    for (char c : action) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    static constexpr std::array<std::string_view, 5> allowed = {"RESTRICT", "CASCADE", "SET NULL",
                                                                "SET DEFAULT", "NO ACTION"};
    for (auto a : allowed)
        if (up == a) return up;
    throw ArgumentError("Unexpected SQL phrase " + quoted(action) + " for " + std::string(clause) +
                        " (expected RESTRICT, CASCADE, SET NULL, SET DEFAULT or NO ACTION)");
}

void check_sql_expression(std::string_view sql, std::string_view what) {
    auto fail = [&](const std::string& why) {
        throw ArgumentError(std::string(what) + " " + quoted(sql) + " is not a single SQL expression: " + why);
    };
    if (sql.empty()) fail("it is empty");
    int depth = 0;
    for (std::size_t i = 0; i < sql.size(); ++i) {
        char c = sql[i];
        if (c == '\'' || c == '"' || c == '`' || c == '[') {
            char close = c == '[' ? ']' : c;
            std::size_t j = i + 1;
            for (;; ++j) {
                if (j >= sql.size()) fail("a quote is not closed");
                if (sql[j] == close) {
                    if (close != ']' && j + 1 < sql.size() && sql[j + 1] == close) {
                        ++j;  // doubled quote
                        continue;
                    }
                    break;
                }
            }
            i = j;
            continue;
        }
        if (c == '\0') fail("it contains a NUL character");
        if (c == ';') fail("it contains ';'");
        if ((c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') ||
            (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*'))
            fail("it contains a comment");
        if (c == '(') ++depth;
        if (c == ')' && --depth < 0) fail("a ')' has no '('");
    }
    if (depth != 0) fail("a '(' is not closed");
}

std::string sql_string_literal(std::string_view text) {
    std::string out = "'";
    for (char c : text) {
        if (c == '\'') out += '\'';
        out += c;
    }
    return out + "'";
}

std::string default_expression_sql(std::string_view sql) {
    auto single_token = [&] {
        std::size_t i = 0;
        if (sql.front() == '\'') {  // one string literal
            for (i = 1; i < sql.size(); ++i)
                if (sql[i] == '\'') {
                    if (i + 1 < sql.size() && sql[i + 1] == '\'') ++i;
                    else return i + 1 == sql.size();
                }
            return false;
        }
        if (sql.front() == '-' || sql.front() == '+') i = 1;
        if (i == sql.size()) return false;
        for (; i < sql.size(); ++i)
            if (!is_ident_char(sql[i]) && sql[i] != '.') return false;
        return true;
    };
    auto wrapped = [&] {  // "(...)" where the first '(' closes at the end
        if (sql.size() < 2 || sql.front() != '(' || sql.back() != ')') return false;
        int depth = 0;
        for (std::size_t i = 0; i < sql.size(); ++i) {
            if (sql[i] == '\'') {
                for (++i; i < sql.size() && sql[i] != '\''; ++i) {
                }
                continue;
            }
            if (sql[i] == '(') ++depth;
            if (sql[i] == ')' && --depth == 0 && i + 1 != sql.size()) return false;
        }
        return true;
    };
    if (single_token() || wrapped()) return std::string(sql);
    return "(" + std::string(sql) + ")";
}

void check_operator(std::string_view op) {
    static constexpr std::string_view symbols = "<>=!~+-*/%&|^#@?:";
    bool all_symbols = !op.empty();
    for (char c : op)
        if (symbols.find(c) == std::string_view::npos) all_symbols = false;
    if (all_symbols && op.find("--") == std::string_view::npos && op.find("/*") == std::string_view::npos)
        return;
    bool words = !op.empty() && std::isalpha(static_cast<unsigned char>(op.front())) &&
                 std::isalpha(static_cast<unsigned char>(op.back()));
    for (std::size_t i = 0; words && i < op.size(); ++i) {
        char c = op[i];
        if (c == ' ') {
            if (op[i + 1] == ' ') words = false;
        } else if (!std::isalpha(static_cast<unsigned char>(c))) {
            words = false;
        }
    }
    if (!words)
        throw ArgumentError("custom operator " + quoted(op) +
                            " must be operator symbols or words (letters and single spaces)");
}

void check_function_name(std::string_view name) {
    bool ok = !name.empty();
    bool at_start = true;
    for (char c : name) {
        if (c == '.') {
            if (at_start) ok = false;
            at_start = true;
        } else if (at_start ? is_ident_start(c) : is_ident_char(c)) {
            at_start = false;
        } else {
            ok = false;
        }
    }
    if (!ok || at_start)
        throw ArgumentError("function name " + quoted(name) +
                            " must be letters, digits and '_' (optionally dotted, as schema.name)");
}

}  // namespace athanor::detail
