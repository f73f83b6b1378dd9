// athanor's error hierarchy, after SQLAlchemy's exc.py and orm/exc.py.
//
// Every error athanor raises derives from athanor::Error, itself a std::runtime_error, so a
// program can catch them all at one place. Database errors (DBAPIError and below) carry the SQL
// text, its parameters and SQLite's extended result code or PostgreSQL's SQLSTATE.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace athanor {

class Value;

/// The root of every athanor error (SQLAlchemy's SQLAlchemyError).
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A function was called with bad arguments: a malformed URL, schema document or mapping.
class ArgumentError : public Error {
public:
    using Error::Error;
};

/// A schema object refers to a table that does not exist (ForeignKey target, reflection).
class NoSuchTableError : public ArgumentError {
public:
    using ArgumentError::ArgumentError;
};

/// A statement could not be compiled to SQL (unsupported construct, unconsumed names).
class CompileError : public Error {
public:
    using Error::Error;
};

/// The operation is not valid in the current state (SQLAlchemy's InvalidRequestError).
class InvalidRequestError : public Error {
public:
    using Error::Error;
};

/// A required bind parameter was not supplied at execution time.
class MissingParameterError : public InvalidRequestError {
public:
    using InvalidRequestError::InvalidRequestError;
};

/// `one()` found no row.
class NoResultFound : public InvalidRequestError {
public:
    using InvalidRequestError::InvalidRequestError;
};

/// `one()` / `one_or_none()` found more than one row.
class MultipleResultsFound : public InvalidRequestError {
public:
    using InvalidRequestError::InvalidRequestError;
};

/// A class was used with the ORM but has no mapper.
class UnmappedClassError : public InvalidRequestError {
public:
    using InvalidRequestError::InvalidRequestError;
};

/// The session's transaction failed during flush; only rollback() is accepted until then.
class PendingRollbackError : public InvalidRequestError {
public:
    using InvalidRequestError::InvalidRequestError;
};

/// An object is not attached to a session where one is required.
class DetachedInstanceError : public InvalidRequestError {
public:
    using InvalidRequestError::InvalidRequestError;
};

/// An expired or refreshed object's row no longer exists.
class ObjectDeletedError : public InvalidRequestError {
public:
    using InvalidRequestError::InvalidRequestError;
};

/// The unit of work could not be carried out (identity clash, missing key).
class FlushError : public Error {
public:
    using Error::Error;
};

/// A schema migration that cannot be carried out as asked: it would lose data without
/// allow_data_loss, a precondition fails (NULLs in a column made NOT NULL, rows in a table
/// gaining a NOT NULL column without a default), or a statement of it failed. Nothing of the
/// migration is left in the database when it is raised by MigrationPlan::apply().
class MigrationError : public Error {
public:
    using Error::Error;
};

/// An UPDATE or DELETE of a flushed object matched a different number of rows than expected.
class StaleDataError : public Error {
public:
    using Error::Error;
};

/// An error raised by the database driver while executing a statement.
/// Carries the SQL, the bound parameters (rendered), and the driver's extended code.
class DBAPIError : public Error {
public:
    DBAPIError(const std::string& kind, const std::string& driver_message, std::string statement,
               std::string params_repr, int extended_code);
    /// A server error (PostgreSQL): `driver` names the client library in the message
    /// ("(libpq.IntegrityError) ..."), `sqlstate` is the five-character SQLSTATE.
    DBAPIError(const std::string& kind, const std::string& driver_message, std::string statement,
               std::string params_repr, std::string sqlstate, const std::string& driver);

    const std::string& statement() const noexcept { return statement_; }
    const std::string& params() const noexcept { return params_; }
    /// The driver's message, without the SQL and parameters.
    const std::string& orig() const noexcept { return orig_; }
    /// SQLite's extended result code (for example 2067 for SQLITE_CONSTRAINT_UNIQUE).
    int extended_code() const noexcept { return code_; }
    /// SQLite's primary result code (extended_code() & 0xff).
    int code() const noexcept { return code_ & 0xff; }
    /// The SQLSTATE the server reported ("23505" unique_violation, "40001"
    /// serialization_failure, "08006" connection failure); empty for SQLite errors.
    const std::string& sqlstate() const noexcept { return sqlstate_; }

private:
    std::string statement_;
    std::string params_;
    std::string orig_;
    int code_;
    std::string sqlstate_;
};

class InterfaceError : public DBAPIError {
public:
    using DBAPIError::DBAPIError;
};
class DatabaseError : public DBAPIError {
public:
    using DBAPIError::DBAPIError;
};
/// A constraint (UNIQUE, NOT NULL, FOREIGN KEY, CHECK, PRIMARY KEY) was violated.
class IntegrityError : public DatabaseError {
public:
    using DatabaseError::DatabaseError;
};
/// The database could not do the work: busy, locked, cannot open, I/O, disk full.
class OperationalError : public DatabaseError {
public:
    using DatabaseError::DatabaseError;
};
/// The SQL is wrong: syntax error, no such table or column, wrong number of parameters.
class ProgrammingError : public DatabaseError {
public:
    using DatabaseError::DatabaseError;
};
class DataError : public DatabaseError {
public:
    using DatabaseError::DatabaseError;
};
class InternalError : public DatabaseError {
public:
    using DatabaseError::DatabaseError;
};
class NotSupportedError : public DatabaseError {
public:
    using DatabaseError::DatabaseError;
};

}  // namespace athanor
