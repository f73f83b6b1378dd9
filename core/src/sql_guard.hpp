// Private to core/: checks on the few pieces of SQL text that athanor splices into statements
// instead of binding (referential actions, server default expressions, custom operators,
// function names). Each throws ArgumentError naming what was wrong; none lets a second
// statement or a comment through.
#pragma once

#include <string>
#include <string_view>

namespace athanor::detail {

/// ON DELETE / ON UPDATE: RESTRICT, CASCADE, SET NULL, SET DEFAULT or NO ACTION (any case,
/// returned upper-case); "" stays "".
std::string checked_referential_action(std::string_view action, std::string_view clause);
/// A server default expression: quotes closed, parentheses balanced, no ';' and no comment.
void check_sql_expression(std::string_view sql, std::string_view what);
/// Renders a checked server default expression: a single token as it is, else in parentheses
/// (SQLite's DEFAULT takes an expression only parenthesized).
std::string default_expression_sql(std::string_view sql);
/// 'text' as a SQL string literal, embedded quotes doubled.
std::string sql_string_literal(std::string_view text);
/// A custom operator for op(): symbol characters, or words of letters and single spaces.
void check_operator(std::string_view op);
/// A SQL function name: letters, digits and '_', optionally dotted ("schema.fn").
void check_function_name(std::string_view name);

}  // namespace athanor::detail
