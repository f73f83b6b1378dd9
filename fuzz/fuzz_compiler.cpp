// The expression compiler fed by a small fuzzed builder: expressions and statements over a
// fixed schema, built from the input bytes, compile to SQL that SQLite parses (or the builder
// raises an athanor::Error). A syntax error in compiled SQL is a compiler bug.
#include <athanor/athanor.hpp>

#include <fuzzer/FuzzedDataProvider.h>
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace sa = athanor;

namespace {
struct Schema {
    sa::MetaData md;
    sa::Table& users = md.table("users", sa::Column("id", sa::Integer(), sa::primary_key()),
                                sa::Column("name", sa::String(50)), sa::Column("score", sa::Float()),
                                sa::Column("group", sa::String(20)));  // a reserved word, quoted
    sa::Table& addresses = md.table("addresses", sa::Column("id", sa::Integer(), sa::primary_key()),
                                    sa::Column("email", sa::String(100)),
                                    sa::Column("user_id", sa::Integer(), sa::ForeignKey("users.id")));
    sqlite3* db = nullptr;
    Schema() {
        sqlite3_open(":memory:", &db);
        for (const sa::Table* t : md.sorted_tables())
            sqlite3_exec(db, sa::create_table_sql(*t, sa::sqlite_dialect()).c_str(), nullptr, nullptr, nullptr);
    }
};

Schema& schema() {
    static Schema s;
    return s;
}

// Set when the input chose free text for an operator or a function name: athanor checks such
// text against injection, not against each dialect's grammar, so a syntax error is then the
// input's, but a second statement never is.
bool free_text = false;

sa::ColumnElement column(FuzzedDataProvider& in) {
    Schema& s = schema();
    const char* names[] = {"id", "name", "score", "group"};
    if (in.ConsumeBool()) return s.users.c[names[in.ConsumeIntegralInRange<int>(0, 3)]];
    const char* anames[] = {"id", "email", "user_id"};
    return s.addresses.c[anames[in.ConsumeIntegralInRange<int>(0, 2)]];
}

sa::ColumnElement literal(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
        case 0: return sa::ColumnElement(in.ConsumeIntegral<std::int64_t>());
        case 1: return sa::ColumnElement(in.ConsumeFloatingPoint<double>());
        case 2: return sa::ColumnElement(in.ConsumeRandomLengthString(16));
        case 3: return sa::ColumnElement(nullptr);
        default: return sa::ColumnElement(sa::Value());
    }
}

sa::ColumnElement expr(FuzzedDataProvider& in, int depth) {
    if (depth > 6 || in.remaining_bytes() == 0) return in.ConsumeBool() ? column(in) : literal(in);
    switch (in.ConsumeIntegralInRange<int>(0, 17)) {
        case 0: return column(in);
        case 1: return literal(in);
        case 2: return expr(in, depth + 1) == expr(in, depth + 1);
        case 3: return expr(in, depth + 1) != expr(in, depth + 1);
        case 4: return expr(in, depth + 1) < expr(in, depth + 1);
        case 5: return sa::and_(expr(in, depth + 1), expr(in, depth + 1));
        case 6: return sa::or_(expr(in, depth + 1), expr(in, depth + 1));
        case 7: return sa::not_(expr(in, depth + 1));
        case 8: return expr(in, depth + 1) + expr(in, depth + 1);
        case 9: return column(in).like(in.ConsumeRandomLengthString(8));
        case 10: {
            std::vector<sa::Value> vs;
            for (int n = in.ConsumeIntegralInRange<int>(0, 4); n > 0; --n) vs.emplace_back(in.ConsumeIntegral<int>());
            return in.ConsumeBool() ? column(in).in_(vs) : column(in).not_in(vs);
        }
        case 11: return column(in).between(literal(in), literal(in));
        case 12: return column(in).is_(nullptr);
        case 13: return sa::func::count(expr(in, depth + 1));
        case 14: return sa::func::lower(expr(in, depth + 1));
        case 15: {
            static const char* ops[] = {"&", "|", "<<", ">>", "||", "GLOB", "REGEXP", "IS NOT", "->>"};
            if (in.ConsumeBool()) return column(in).op(ops[in.ConsumeIntegralInRange<int>(0, 8)], expr(in, depth + 1));
            free_text = true;
            return column(in).op(in.ConsumeRandomLengthString(6), expr(in, depth + 1));
        }
        case 16:
            free_text = true;
            return sa::func::call(in.ConsumeRandomLengthString(8), expr(in, depth + 1));
        default: return sa::select(column(in)).where(expr(in, depth + 1)).limit(1).scalar_subquery();
    }
}

void check(const sa::Executable& stmt) {
    std::string sql = stmt.to_string(sa::sqlite_dialect());
    sqlite3_stmt* st = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(schema().db, sql.c_str(), static_cast<int>(sql.size()), &st, &tail);
    std::string err = rc == SQLITE_OK ? "" : sqlite3_errmsg(schema().db);
    sqlite3_finalize(st);
    bool syntax = err.find("syntax error") != std::string::npos || err.find("unrecognized token") != std::string::npos ||
                  err.find("incomplete input") != std::string::npos;
    bool trailing = rc == SQLITE_OK && tail && *tail != '\0';
    if ((syntax && !free_text) || trailing) {
        std::fprintf(stderr, "compiled SQL does not parse (%s):\n%s\n", err.c_str(), sql.c_str());
        std::abort();
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    Schema& s = schema();
    free_text = false;
    try {
        switch (in.ConsumeIntegralInRange<int>(0, 3)) {
            case 0: {
                auto q = sa::select(column(in), expr(in, 0).label("x")).where(expr(in, 0));
                if (in.ConsumeBool()) q = q.order_by(column(in).desc());
                if (in.ConsumeBool()) q = q.limit(in.ConsumeIntegral<std::int64_t>());
                if (in.ConsumeBool()) q = q.group_by(column(in)).having(expr(in, 0));
                check(q);
                break;
            }
            case 1: check(s.users.update().where(expr(in, 0)).values({{"name", in.ConsumeRandomLengthString(8)}})); break;
            case 2: check(s.users.delete_().where(expr(in, 0))); break;
            default: check(sa::select(s.users, s.addresses).join_from(s.users, s.addresses).where(expr(in, 0))); break;
        }
    } catch (const sa::Error&) {
    }
    return 0;
}
