// Forward declarations of athanor's core (schema and SQL expression language) types.
#pragma once

namespace athanor {

class Value;
class Params;
class TypeEngine;
class Column;
class Table;
class MetaData;
class ColumnElement;
class FromClause;
class Select;
class Insert;
class Update;
class Delete;
class TextClause;
class Executable;
class Dialect;
class Connectable;
class SchemaConnection;
struct Compiled;

}  // namespace athanor
