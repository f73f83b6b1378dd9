// The Session: behaviours of SQLAlchemy's test/orm suites that apply without relationships.
// API.md writes User{.name = "wendy"}: designated initializers that leave members to their
// defaults, which GCC 12 flags under -Wextra.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "fixtures.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

namespace {
struct User {
    std::int64_t id = 0;
    std::string name, fullname, password;
};
struct Address {
    std::int64_t id = 0;
    std::string email;
    std::optional<std::int64_t> user_id;
};
struct Pair {  // composite key
    std::int64_t a = 0;
    std::string b;
    std::string v;
};
struct Unmapped {
    int x = 0;
};
// A class with a vtable and a base class: its members are not at the offsets a plain struct's are.
struct Named {
    virtual ~Named() = default;
    std::string name;
};
struct Person : Named {
    int rank = 0;
    std::int64_t id = 0;
    std::string password, fullname;
};

std::shared_ptr<User> mk(std::string name, std::string fullname = "", std::string pw = "") {
    return std::make_shared<User>(User{.id = 0, .name = std::move(name), .fullname = std::move(fullname),
                                       .password = std::move(pw)});
}

}  // namespace

class SessionTest : public ::testing::Test, public UsersSchema {
protected:
    sa::Registry registry;
    sa::MetaData extra;
    sa::Table& pairs = extra.table("pairs", sa::Column("a", sa::Integer(), sa::primary_key()),
                                   sa::Column("b", sa::String(10), sa::primary_key()), sa::Column("v", sa::String()));
    std::shared_ptr<sa::Engine> engine = testdb::engine({.echo = true, .foreign_keys = true});
    SqlLog log;

    void SetUp() override {
        registry.map_imperatively<User>(users)
            .column("id", &User::id)
            .column("name", &User::name)
            .column("fullname", [](const User& u) { return u.fullname; },
                    [](User& u, std::string v) { u.fullname = std::move(v); })
            .column("password", &User::password);
        registry.map_imperatively<Address>(addresses)
            .column("id", &Address::id).column("email", &Address::email).column("user_id", &Address::user_id);
        registry.map_imperatively<Pair>(pairs).column("a", &Pair::a).column("b", &Pair::b).column("v", &Pair::v);
        metadata.create_all(*engine);
        extra.create_all(*engine);
        log.clear();
    }
    std::int64_t rows(sa::Session& s, const sa::Table& t) {
        return s.connection().execute(sa::select(sa::func::count()).select_from(t)).scalar<std::int64_t>();
    }
    std::string db_name(sa::Session& s, std::int64_t id) {
        return s.connection().execute(sa::select(users.c["name"]).where(users.c["id"] == id)).scalar<std::string>();
    }
};

// ---- API.md section 6 as written -----------------------------------------------------------

TEST_F(SessionTest, ApiSection6) {
    sa::sessionmaker Session;
    Session.configure({.bind = engine});
    sa::Session session = Session();
    sa::Session direct(engine);

    auto ed = std::make_shared<User>(User{.name = "ed", .fullname = "Ed Jones", .password = "edspassword"});
    session.add(ed);
    EXPECT_EQ(session.state_of(ed), sa::ObjectState::pending);
    EXPECT_EQ(log.count_starting("INSERT"), 0u);  // nothing sent yet
    auto same = session.query<User>().filter_by({{"name", "ed"}}).first();
    EXPECT_EQ(same, ed);
    EXPECT_NE(ed->id, 0);
    auto st = log.statements();
    ASSERT_GE(st.size(), 2u);
    EXPECT_EQ(st[0], "INSERT INTO users (name, fullname, password) VALUES (?, ?, ?)");  // autoflush first
    EXPECT_EQ(st[1].rfind("SELECT users.id, users.name, users.fullname, users.password", 0), 0u);
    ed->password = "f8s7ccs";
    EXPECT_TRUE(session.dirty().contains(ed));
    session.add_all({std::make_shared<User>(User{.name = "wendy"}), std::make_shared<User>(User{.name = "mary"})});
    log.clear();
    session.commit();
    auto sts = log.statements();
    ASSERT_EQ(sts.size(), 3u);
    EXPECT_EQ(sts[0], "UPDATE users SET password=? WHERE users.id = ?");  // changed columns only
    EXPECT_EQ(sts[1], "INSERT INTO users (name, fullname, password) VALUES (?, ?, ?)");
    log.clear();
    EXPECT_EQ(session.get<User>(ed->id), ed);     // identity map: the same object; commit()
    EXPECT_EQ(log.count_starting("SELECT"), 1u);  // expired it, so one SELECT reloads it (SQLAlchemy)
    EXPECT_EQ(session.get<User>(ed->id), ed);
    EXPECT_EQ(log.count_starting("SELECT"), 1u);  // now a pure identity-map hit
    auto two = session.query<User>().filter(users.c["name"].in_({"ed", "wendy"})).order_by(users.c["id"]).all();
    ASSERT_EQ(two.size(), 2u);
    EXPECT_EQ(two[0], ed);
    EXPECT_EQ(session.query<User>().filter_by({{"name", "mary"}}).one()->name, "mary");
    EXPECT_EQ(session.query<User>().count(), 3);
    session.delete_(ed);
    log.clear();
    session.flush();
    EXPECT_EQ(log.statements(), std::vector<std::string>{"DELETE FROM users WHERE users.id = ?"});
    session.rollback();
    EXPECT_EQ(session.state_of(ed), sa::ObjectState::persistent);
    EXPECT_EQ(session.query<User>().count(), 3);  // no data lost

    sa::Session tuned(engine, {.autoflush = true, .expire_on_commit = false});
    EXPECT_EQ(session.state_of(ed), sa::ObjectState::persistent);
    { auto guard = session.no_autoflush(); }
    {
        auto sp = session.begin_nested();
        sp.rollback();
    }
    auto detached_copy = std::make_shared<User>(User{.id = ed->id, .name = "ed", .fullname = "Merged", .password = "p"});
    std::shared_ptr<User> attached = session.merge(detached_copy);
    EXPECT_EQ(attached, ed);
    EXPECT_EQ(ed->fullname, "Merged");
    session.refresh(ed);
    EXPECT_EQ(ed->fullname, "Ed Jones");
}

// ---- identity map ------------------------------------------------------------------------

// std::int64_t and std::string members are read and written where they are in the object,
// whatever its layout (a vtable, a member of a base class); the others through their accessors.
TEST_F(SessionTest, MembersOfAnyClassLayoutLoadCompareAndFlush) {
    sa::Registry reg;
    reg.map_imperatively<Person>(users)
        .column("id", &Person::id)
        .column("name", static_cast<std::string Person::*>(&Person::name))
        .column("fullname", [](const Person& p) { return p.fullname; },
                [](Person& p, std::string v) { p.fullname = std::move(v); })
        .column("password", &Person::password);
    std::int64_t id = 0;
    {
        sa::Session s(engine);
        auto p = std::make_shared<Person>();
        p->name = std::string(40, 'a');  // longer than a short string's own buffer
        p->fullname = "Ann Able";
        p->password = "pw";
        s.add(p);
        s.commit();
        id = p->id;
    }
    ASSERT_GT(id, 0);
    sa::Session s(engine);
    auto p = s.get<Person>(id);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->id, id);
    EXPECT_EQ(p->name, std::string(40, 'a'));
    EXPECT_EQ(p->fullname, "Ann Able");
    EXPECT_EQ(p->password, "pw");
    EXPECT_EQ(p->rank, 0);
    EXPECT_FALSE(s.is_modified(p));
    p->name = "anna";  // the base class's member
    EXPECT_TRUE(s.is_modified(p));
    p->name = std::string(40, 'a');  // back as loaded: not a change
    EXPECT_FALSE(s.is_modified(p));
    p->name = "anna";
    p->password = "secret";
    log.clear();
    s.commit();
    EXPECT_EQ(log.count("UPDATE users SET name=?, password=? WHERE users.id = ?"), 1u);
    auto c = engine->connect();
    auto row = c.execute(sa::text("SELECT name, fullname, password FROM users WHERE id = :id"), {{"id", id}}).one();
    EXPECT_EQ(row[0], sa::Value("anna"));
    EXPECT_EQ(row[1], sa::Value("Ann Able"));
    EXPECT_EQ(row[2], sa::Value("secret"));
}

TEST_F(SessionTest, QueryReturnsTheSameObjectEveryTime) {
    sa::Session s(engine);
    s.add(mk("ed"));
    s.commit();
    auto a = s.query<User>().filter_by({{"name", "ed"}}).one();
    auto b = s.query<User>().all().front();
    auto c = s.get<User>(a->id);
    EXPECT_EQ(a, b);
    EXPECT_EQ(a, c);
}

TEST_F(SessionTest, GetMissLoadsOnceThenHits) {
    {
        sa::Session s(engine);
        s.add(mk("ed"));
        s.commit();
    }
    sa::Session s(engine);
    log.clear();
    auto u = s.get<User>(1);
    ASSERT_TRUE(u);
    EXPECT_EQ(u->name, "ed");
    EXPECT_EQ(log.count_starting("SELECT"), 1u);
    EXPECT_EQ(s.get<User>(1), u);
    EXPECT_EQ(log.count_starting("SELECT"), 1u);
    EXPECT_EQ(s.get<User>(99), nullptr);  // expected absence is not an exception
}

TEST_F(SessionTest, GetWithCompositeKey) {
    sa::Session s(engine);
    s.add(std::make_shared<Pair>(Pair{.a = 1, .b = "x", .v = "one"}));
    s.add(std::make_shared<Pair>(Pair{.a = 1, .b = "y", .v = "two"}));
    s.commit();
    sa::Session s2(engine);
    auto p = s2.get<Pair>({1, "y"});
    ASSERT_TRUE(p);
    EXPECT_EQ(p->v, "two");
    EXPECT_EQ(s2.get<Pair>({1, "y"}), p);
    EXPECT_EQ(s2.get<Pair>({2, "y"}), nullptr);
    EXPECT_THROW(s2.get<Pair>(1), sa::InvalidRequestError);
}

// As SQLAlchemy's weak identity map: an object the program let go of is gone from the session
// (the next get() loads it again), unless it was changed: then the session keeps it, changes and
// all, and the next get() returns it without SQL.
TEST_F(SessionTest, GetLetsGoOfAnObjectNobodyHoldsButKeepsAChangedOne) {
    {
        sa::Session s(engine);
        s.add(mk("ed"));
        s.add(mk("wendy"));
        s.commit();
    }
    sa::Session s(engine);
    log.clear();
    ASSERT_TRUE(s.get<User>(1));
    ASSERT_TRUE(s.get<User>(1));
    EXPECT_EQ(log.count_starting("SELECT"), 2u);  // let go of in between: loaded again
    s.get<User>(2)->name = "wendy changed";        // changed, then let go of
    ASSERT_TRUE(s.get<User>(1));                   // this load must not drop the changed one
    log.clear();
    auto w = s.get<User>(2);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->name, "wendy changed");
    EXPECT_EQ(log.count_starting("SELECT"), 0u);
    s.commit();
    EXPECT_EQ(db_name(s, 2), "wendy changed");
}

// get() puts a new object where its lookup found the key missing only when the row's key is
// that integer: text that reads the same (a TEXT key compared with an integer) is keyed as text,
// and the object stays one object.
TEST_F(SessionTest, GetByAnIntegerOfATextKeyKeepsOneObject) {
    struct Code {
        std::string code, v;
    };
    sa::MetaData md;
    sa::Table& codes = md.table("codes", sa::Column("code", sa::String(), sa::primary_key()), sa::Column("v", sa::String()));
    md.create_all(*engine);
    registry.map_imperatively<Code>(codes).column("code", &Code::code).column("v", &Code::v);
    {
        sa::Session s(engine);
        s.add(std::make_shared<Code>(Code{"5", "five"}));
        s.commit();
    }
    sa::Session s(engine);
    auto c = s.get<Code>(5);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->v, "five");
    EXPECT_EQ(s.get<Code>(5), c);
    log.clear();
    EXPECT_EQ(s.get<Code>("5"), c);
    EXPECT_EQ(log.count_starting("SELECT"), 0u);  // keyed by its text
}

// A long run of get() that keeps some objects and lets go of the others (slots freed, reused
// and moved as the identity map grows): every kept object is found again, without SQL.
TEST_F(SessionTest, GetsThatKeepSomeObjectsFindEveryKeptOneAgain) {
    std::vector<sa::Params> rows;
    for (int i = 1; i <= 3000; ++i)
        rows.push_back({{"name", "u" + std::to_string(i)}, {"fullname", ""}, {"password", ""}});
    {
        auto conn = engine->connect();
        conn.execute(users.insert(), rows);
        conn.commit();
    }
    sa::Session s(engine);
    std::map<std::int64_t, std::shared_ptr<User>> kept;
    std::uint64_t x = 88172645463325252ull;  // xorshift: the same order each run
    for (int n = 0; n < 6000; ++n) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const auto id = static_cast<std::int64_t>(x % 3000) + 1;
        auto u = s.get<User>(id);
        ASSERT_TRUE(u);
        ASSERT_EQ(u->id, id);
        ASSERT_EQ(u->name, "u" + std::to_string(id));
        if (auto it = kept.find(id); it != kept.end()) ASSERT_EQ(u, it->second);
        else if (x % 3 == 0) kept.emplace(id, u);
    }
    ASSERT_GT(kept.size(), 500u);
    log.clear();
    for (const auto& [id, u] : kept) EXPECT_EQ(s.get<User>(id), u);
    EXPECT_EQ(log.count_starting("SELECT"), 0u);
}

TEST_F(SessionTest, QueryDoesNotOverwriteUnflushedChanges) {
    sa::Session s(engine, {.autoflush = false, .expire_on_commit = false});
    auto ed = mk("ed", "Ed");
    s.add(ed);
    s.commit();
    ed->fullname = "changed in memory";
    auto again = s.query<User>().filter_by({{"name", "ed"}}).one();
    EXPECT_EQ(again, ed);
    EXPECT_EQ(ed->fullname, "changed in memory");
    EXPECT_TRUE(s.is_modified(ed));
}

TEST_F(SessionTest, ExpiredObjectIsOverwrittenByTheNextLoad) {
    sa::Session s(engine);  // expire_on_commit
    auto ed = mk("ed", "Ed");
    s.add(ed);
    s.commit();
    s.connection().execute(users.update().values({{"fullname", "from elsewhere"}}));
    log.clear();
    EXPECT_EQ(s.get<User>(ed->id), ed);           // the same object (identity map) ...
    EXPECT_EQ(ed->fullname, "from elsewhere");     // ... reloaded, since it was expired
    EXPECT_EQ(log.count_starting("SELECT"), 1u);
    EXPECT_EQ(s.get<User>(ed->id), ed);            // no longer expired: a hit without SQL
    EXPECT_EQ(log.count_starting("SELECT"), 1u);
    s.connection().execute(users.update().values({{"fullname", "again"}}));
    s.expire(ed);
    s.query<User>().all();
    EXPECT_EQ(ed->fullname, "again");
}

TEST_F(SessionTest, ExpireOnCommitFalseKeepsObjects) {
    sa::Session s(engine, {.autoflush = true, .expire_on_commit = false});
    auto ed = mk("ed", "Ed");
    s.add(ed);
    s.commit();
    s.connection().execute(users.update().values({{"fullname", "from elsewhere"}}));
    s.query<User>().all();
    EXPECT_EQ(ed->fullname, "Ed");
    s.refresh(ed);
    EXPECT_EQ(ed->fullname, "from elsewhere");
}

TEST_F(SessionTest, ExpireAndExpireAll) {
    sa::Session s(engine, {.autoflush = true, .expire_on_commit = false});
    auto ed = mk("ed", "Ed");
    auto wendy = mk("wendy", "W");
    s.add_all({ed, wendy});
    s.commit();
    s.connection().execute(users.update().values({{"fullname", "X"}}));
    s.expire(ed);
    s.query<User>().all();
    EXPECT_EQ(ed->fullname, "X");
    EXPECT_EQ(wendy->fullname, "W");
    s.expire_all();
    s.query<User>().all();
    EXPECT_EQ(wendy->fullname, "X");
}

TEST_F(SessionTest, CleanObjectsNobodyHoldsAreLetGoAtFlush) {
    sa::Session s(engine);
    s.add(mk("ed"));
    s.add(mk("wendy"));
    s.flush();
    EXPECT_EQ(s.new_objects().size(), 0u);
    auto wendy = s.query<User>().filter_by({{"name", "wendy"}}).one();  // autoflush lets "ed" go
    const User* seen = wendy.get();
    s.flush();
    EXPECT_TRUE(s.contains(seen));  // still held by the test: still tracked, same identity
    EXPECT_EQ(s.query<User>().filter_by({{"name", "wendy"}}).one().get(), seen);
    auto ed = s.query<User>().filter_by({{"name", "ed"}}).one();  // loaded again, from the row
    EXPECT_EQ(ed->name, "ed");
    EXPECT_EQ(s.get<User>(ed->id), ed);
}

TEST_F(SessionTest, SessionKeepsObjectsWhoseHandlesWereDropped) {
    sa::Session s(engine);
    s.add(mk("dropped"));
    {
        auto ed = mk("ed");
        s.add(ed);
        s.flush();
        ed->fullname = "modified then dropped";
    }
    s.commit();
    auto ed = s.query<User>().filter_by({{"name", "ed"}}).one();
    EXPECT_EQ(ed->fullname, "modified then dropped");
    EXPECT_EQ(s.query<User>().count(), 2);
}

// ---- dirty tracking -------------------------------------------------------------------------

// The dirty check compares short strings in line (overlapping loads of 4, 8 or 16 bytes): a
// change of one byte anywhere in a string of any length is a change, and is flushed.
TEST_F(SessionTest, AOneByteChangeAnywhereInATextOfAnyLengthIsAChange) {
    sa::Session s(engine);
    auto u = std::make_shared<User>();
    u->name = "n";
    s.add(u);
    s.flush();
    for (std::size_t len = 0; len <= 48; ++len) {  // fullname is String(50): one byte more still fits
        std::string text;
        for (std::size_t i = 0; i < len; ++i) text.push_back(static_cast<char>('a' + (i * 7) % 26));
        u->fullname = text;
        s.flush();
        ASSERT_FALSE(s.is_modified(u)) << len;
        for (std::size_t at = 0; at < len; ++at) {
            u->fullname[at] = static_cast<char>(u->fullname[at] ^ 0x20);  // the same length, one byte other
            ASSERT_TRUE(s.is_modified(u)) << "length " << len << ", byte " << at;
            u->fullname = text;
            ASSERT_FALSE(s.is_modified(u)) << "length " << len << ", byte " << at << " put back";
        }
        u->fullname = text + "z";  // one byte longer
        ASSERT_TRUE(s.is_modified(u)) << len;
        if (len > 0) {
            u->fullname = text.substr(0, len - 1);  // one byte shorter
            ASSERT_TRUE(s.is_modified(u)) << len;
        }
        // And the flush writes it: the last byte changed, read back from the table.
        u->fullname = text;
        if (len > 0) u->fullname.back() = '#';
        s.flush();
        auto row = s.connection().execute(sa::select(users.c["fullname"]).where(users.c["id"] == u->id)).one();
        ASSERT_EQ(row.get<std::string>("fullname"), u->fullname) << len;
    }
}

TEST_F(SessionTest, DirtyNewDeletedSets) {
    sa::Session s(engine);
    auto ed = mk("ed");
    auto wendy = mk("wendy");
    s.add_all({ed, wendy});
    EXPECT_EQ(s.new_objects().size(), 2u);
    s.flush();
    EXPECT_TRUE(s.new_objects().empty());
    EXPECT_TRUE(s.dirty().empty());
    EXPECT_FALSE(s.is_modified(ed));
    ed->fullname = "x";
    EXPECT_TRUE(s.is_modified(ed));
    EXPECT_TRUE(s.dirty().contains(ed));
    EXPECT_FALSE(s.dirty().contains(wendy));
    s.delete_(wendy);
    EXPECT_TRUE(s.deleted().contains(wendy));
    ed->fullname = "";  // back to the snapshot: no longer dirty
    EXPECT_FALSE(s.is_modified(ed));
}

TEST_F(SessionTest, UpdateSetsOnlyChangedColumnsAndSkipsUnchanged) {
    sa::Session s(engine);
    auto ed = mk("ed", "Ed", "pw");
    s.add(ed);
    s.flush();
    log.clear();
    s.flush();  // nothing changed: no SQL
    EXPECT_TRUE(log.statements().empty());
    ed->fullname = "Edward";
    ed->password = "new";
    s.flush();
    EXPECT_EQ(log.statements(), std::vector<std::string>{"UPDATE users SET fullname=?, password=? WHERE users.id = ?"});
    EXPECT_EQ(log.lines().back().substr(log.lines().back().find("] ") + 2), "('Edward', 'new', 1)");
}

TEST_F(SessionTest, SameShapeRowsShareOneStatement) {
    sa::Session s(engine);
    for (int i = 0; i < 3; ++i) s.add(mk("u" + std::to_string(i)));
    s.flush();
    // One statement for the three rows: the first may be generated (or come from the
    // process-wide cache), the others reuse it.
    EXPECT_EQ(log.count_starting("[generated in") + log.count_starting("[cached since"), 3u);
    EXPECT_LE(log.count_starting("[generated in"), 1u);
    for (auto& u : s.query<User>().all()) u->password = "p";
    log.clear();
    s.flush();
    EXPECT_EQ(log.count_starting("UPDATE users SET password=? WHERE users.id = ?"), 3u);
}

// ---- flush order, keys, defaults -----------------------------------------------------------

TEST_F(SessionTest, ParentsInsertedBeforeChildrenDeletedAfter) {
    sa::Session s(engine);
    auto addr = std::make_shared<Address>(Address{.id = 0, .email = "a@x", .user_id = 10});
    s.add(addr);  // child added first
    auto user = std::make_shared<User>(User{.id = 10, .name = "p", .fullname = "", .password = ""});
    s.add(user);  // held: get() below finds it without a SELECT
    s.flush();  // foreign keys are enforced on this engine: order matters
    auto st = log.statements();
    ASSERT_EQ(st.size(), 2u);
    EXPECT_EQ(st[0].rfind("INSERT INTO users", 0), 0u);
    EXPECT_EQ(st[1].rfind("INSERT INTO addresses", 0), 0u);
    log.clear();
    s.delete_(s.get<User>(10));
    s.delete_(addr);
    s.flush();
    st = log.statements();
    ASSERT_EQ(st.size(), 2u);
    EXPECT_EQ(st[0], "DELETE FROM addresses WHERE addresses.id = ?");
    EXPECT_EQ(st[1], "DELETE FROM users WHERE users.id = ?");
}

TEST_F(SessionTest, ExplicitPrimaryKeyIsInserted) {
    sa::Session s(engine);
    auto u = std::make_shared<User>(User{.id = 42, .name = "x", .fullname = "", .password = ""});
    s.add(u);
    s.commit();
    EXPECT_EQ(u->id, 42);
    EXPECT_EQ(s.get<User>(42), u);
}

TEST_F(SessionTest, ClientDefaultsAndServerDefaults) {
    struct Thing {
        std::int64_t id = 0;
        std::optional<std::int64_t> n;
        std::optional<std::string> s;
    };
    sa::MetaData m;
    sa::Table& t = m.table("things", sa::Column("id", sa::Integer(), sa::primary_key()),
                           sa::Column("n", sa::Integer(), sa::default_(7)),
                           sa::Column("s", sa::String(), sa::server_default("srv")));
    m.create_all(*engine);
    registry.map_imperatively<Thing>(t).column("id", &Thing::id).column("n", &Thing::n).column("s", &Thing::s);
    sa::Session s(engine);
    auto th = std::make_shared<Thing>();
    s.add(th);
    s.flush();
    EXPECT_EQ(th->n, 7);  // the client default is written back
    EXPECT_EQ(th->s, "srv");  // the server default is brought back by RETURNING (eager defaults)
    EXPECT_EQ(log.count_starting("INSERT INTO things (n) VALUES (?)"), 1u);
    EXPECT_EQ(s.connection().execute(sa::select(t.c["s"])).scalar<std::string>(), "srv");
}

TEST_F(SessionTest, PrimaryKeyChangeUpdatesAndRekeys) {
    sa::Session s(engine);
    auto u = mk("ed");
    s.add(u);
    s.commit();
    std::int64_t old = u->id;
    u->id = 500;
    log.clear();
    s.flush();
    EXPECT_EQ(log.statements(), std::vector<std::string>{"UPDATE users SET id=? WHERE users.id = ?"});
    EXPECT_EQ(s.get<User>(500), u);
    EXPECT_EQ(s.get<User>(old), nullptr);
    EXPECT_EQ(db_name(s, 500), "ed");
}

TEST_F(SessionTest, IdentityMapKeepsEveryObjectThroughUpdatesRekeysDeletesAndExpunges) {
    // Thousands of objects (the map grows and rehashes several times), then every kind of
    // change to them in one flush: each key finds its own object, old keys find nothing.
    constexpr std::int64_t n = 3000;
    {
        sa::Session s(engine);
        for (std::int64_t i = 1; i <= n; ++i) s.add(mk("u" + std::to_string(i)));
        s.commit();
    }
    sa::Session s(engine);
    auto all = s.query<User>().order_by(users.c["id"]).all();
    ASSERT_EQ(all.size(), static_cast<std::size_t>(n));
    for (std::int64_t i = 1; i <= n; ++i) {
        auto& u = all[static_cast<std::size_t>(i - 1)];
        u->name += "!";                         // every row changes, its key mostly not
        if (i % 3 == 0) u->id = i + 100000;     // rekeyed
        else if (i % 5 == 0) s.delete_(u);      // deleted
    }
    s.flush();
    for (std::int64_t i = 1; i <= n; ++i)
        if (i % 7 == 0 && i % 3 != 0 && i % 5 != 0) s.expunge(all[static_cast<std::size_t>(i - 1)]);
    log.clear();
    for (std::int64_t i = 1; i <= n; ++i) {
        const auto& u = all[static_cast<std::size_t>(i - 1)];
        SCOPED_TRACE(i);
        if (i % 3 == 0) {
            EXPECT_EQ(s.get<User>(i + 100000), u);
            EXPECT_EQ(s.get<User>(i), nullptr);
        } else if (i % 5 == 0) {
            EXPECT_EQ(s.get<User>(i), nullptr);
        } else if (i % 7 == 0) {
            auto fresh = s.get<User>(i);  // expunged: loaded again as a new object
            ASSERT_TRUE(fresh);
            EXPECT_NE(fresh, u);
            EXPECT_EQ(fresh->name, u->name);
        } else {
            EXPECT_EQ(s.get<User>(i), u);
        }
    }
    // SQL only for what the map cannot answer: old keys of rekeyed rows, deleted rows and
    // the expunged objects (n/3 + n/5 - n/15 + the expunged count).
    std::size_t expunged = 0;
    for (std::int64_t i = 1; i <= n; ++i) expunged += i % 7 == 0 && i % 3 != 0 && i % 5 != 0;
    EXPECT_EQ(log.count_starting("SELECT"), static_cast<std::size_t>(n / 3 + n / 5 - n / 15) + expunged);
    EXPECT_EQ(db_name(s, 100000 + 3), "u3!");
    EXPECT_EQ(db_name(s, 1), "u1!");
}

TEST_F(SessionTest, DeleteThenAddSameKeyIsOneUpdate) {
    sa::Session s(engine);
    auto old = std::make_shared<User>(User{.id = 5, .name = "old", .fullname = "F", .password = ""});
    s.add(old);
    s.commit();
    s.delete_(old);
    auto repl = std::make_shared<User>(User{.id = 5, .name = "new", .fullname = "F", .password = ""});
    s.add(repl);
    log.clear();
    s.flush();
    EXPECT_EQ(log.statements(), std::vector<std::string>{"UPDATE users SET name=? WHERE users.id = ?"});
    EXPECT_EQ(s.get<User>(5), repl);
    EXPECT_EQ(s.state_of(repl), sa::ObjectState::persistent);
    EXPECT_EQ(s.state_of(old), sa::ObjectState::detached);
    s.commit();
    EXPECT_EQ(db_name(s, 5), "new");
}

TEST_F(SessionTest, KeyClashWithIdentityMapIsFlushError) {
    sa::Session s(engine);
    s.add(std::make_shared<User>(User{.id = 5, .name = "a", .fullname = "", .password = ""}));
    s.commit();
    s.get<User>(5);
    s.add(std::make_shared<User>(User{.id = 5, .name = "b", .fullname = "", .password = ""}));
    EXPECT_THROW(s.flush(), sa::FlushError);
    EXPECT_THROW(s.query<User>().all(), sa::PendingRollbackError);
    s.rollback();
    EXPECT_EQ(s.query<User>().count(), 1);
}

// ---- failures and rollback -------------------------------------------------------------------

TEST_F(SessionTest, FailedFlushWritesNothingAndNeedsRollback) {
    sa::Session s(engine);
    s.add(mk("ed"));
    s.commit();
    auto a = mk("a");
    auto b = mk("ed");  // duplicate name: IntegrityError half-way through the flush
    auto c = mk("c");
    s.add_all({a, b, c});
    EXPECT_THROW(s.flush(), sa::IntegrityError);
    EXPECT_EQ(a->id, 0);  // keys written during the failed flush were undone
    EXPECT_THROW(s.query<User>().count(), sa::PendingRollbackError);
    EXPECT_THROW(s.commit(), sa::PendingRollbackError);
    EXPECT_THROW(s.add(mk("z")), sa::PendingRollbackError);
    try {
        s.flush();
    } catch (const sa::PendingRollbackError& e) {
        EXPECT_NE(std::string(e.what()).find(testdb::postgres() ? "duplicate key value violates unique constraint"
                                                                 : "UNIQUE constraint failed"),
                  std::string::npos) << e.what();
    }
    s.rollback();
    EXPECT_EQ(s.state_of(a), sa::ObjectState::transient);  // pending objects are gone
    EXPECT_EQ(s.query<User>().count(), 1);  // nothing half-written
    b->name = "b";
    s.add_all({a, b, c});
    s.commit();
    EXPECT_EQ(s.query<User>().count(), 4);
}

TEST_F(SessionTest, RollbackRestoresPersistentValuesAndDeletedObjects) {
    sa::Session s(engine);
    auto ed = mk("ed", "Ed");
    auto wendy = mk("wendy", "W");
    s.add_all({ed, wendy});
    s.commit();
    ed->fullname = "changed";
    s.flush();
    ed->password = "unflushed";
    s.delete_(wendy);
    s.flush();
    auto fresh = mk("fresh");
    s.add(fresh);
    s.rollback();
    EXPECT_EQ(ed->fullname, "Ed");
    EXPECT_EQ(ed->password, "");
    EXPECT_EQ(s.state_of(wendy), sa::ObjectState::persistent);
    EXPECT_EQ(s.state_of(fresh), sa::ObjectState::transient);
    EXPECT_FALSE(s.is_modified(ed));
    EXPECT_EQ(s.query<User>().count(), 2);
    EXPECT_EQ(s.get<User>(wendy->id), wendy);
}

TEST_F(SessionTest, RollbackExpungesObjectsInsertedInTheTransaction) {
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    s.flush();
    EXPECT_EQ(s.state_of(ed), sa::ObjectState::persistent);
    s.rollback();
    EXPECT_EQ(s.state_of(ed), sa::ObjectState::transient);
    EXPECT_EQ(rows(s, users), 0);
}

TEST_F(SessionTest, RollbackOnlyUndoesSinceLastCommit) {
    sa::Session s(engine);
    auto ed = mk("ed", "one");
    s.add(ed);
    s.commit();
    ed->fullname = "two";
    s.commit();
    ed->fullname = "three";
    s.flush();
    s.rollback();
    EXPECT_EQ(ed->fullname, "two");
}

TEST_F(SessionTest, StaleDataWhenRowDeletedUnderneath) {
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    s.commit();
    s.connection().execute(users.delete_());
    ed->fullname = "x";
    try {
        s.flush();
        FAIL() << "expected StaleDataError";
    } catch (const sa::StaleDataError& e) {
        EXPECT_NE(std::string(e.what()).find("expected to update 1 row(s); 0 were matched"), std::string::npos);
    }
    s.rollback();
}

TEST_F(SessionTest, StaleDataOnDeleteOfMissingRow) {
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    s.commit();
    s.connection().execute(users.delete_());
    s.delete_(ed);
    EXPECT_THROW(s.flush(), sa::StaleDataError);
    s.rollback();
}

// ---- states --------------------------------------------------------------------------------

TEST_F(SessionTest, StateTransitions) {
    sa::Session s(engine);
    auto ed = mk("ed");
    EXPECT_EQ(s.state_of(ed), sa::ObjectState::transient);
    s.add(ed);
    EXPECT_EQ(s.state_of(ed), sa::ObjectState::pending);
    s.flush();
    EXPECT_EQ(s.state_of(ed), sa::ObjectState::persistent);
    s.delete_(ed);
    EXPECT_EQ(s.state_of(ed), sa::ObjectState::deleted);
    s.flush();
    EXPECT_EQ(s.state_of(ed), sa::ObjectState::deleted);
    s.commit();
    EXPECT_EQ(s.state_of(ed), sa::ObjectState::detached);
}

TEST_F(SessionTest, ExpungeMakesDetachedOrTransient) {
    sa::Session s(engine);
    auto ed = mk("ed");
    auto p = mk("pending");
    s.add_all({ed, p});
    s.flush();
    auto q = mk("q");
    s.add(q);
    s.expunge(ed);
    EXPECT_EQ(s.state_of(ed), sa::ObjectState::detached);
    s.expunge(q);
    EXPECT_EQ(s.state_of(q), sa::ObjectState::transient);
    EXPECT_THROW(s.expunge(q), sa::InvalidRequestError);
    s.expunge_all();
    EXPECT_EQ(s.state_of(p), sa::ObjectState::detached);
    EXPECT_FALSE(s.contains(p.get()));
}

TEST_F(SessionTest, DeletePendingJustExpunges) {
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    s.delete_(ed);
    s.flush();
    EXPECT_EQ(rows(s, users), 0);
    EXPECT_EQ(s.state_of(ed), sa::ObjectState::transient);
    EXPECT_THROW(s.delete_(mk("stranger")), sa::InvalidRequestError);
}

TEST_F(SessionTest, AddAfterDeleteUndoesTheDelete) {
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    s.flush();
    s.delete_(ed);
    s.add(ed);
    s.flush();
    EXPECT_EQ(rows(s, users), 1);
    EXPECT_EQ(s.state_of(ed), sa::ObjectState::persistent);
}

TEST_F(SessionTest, GetAfterFlushedDeleteIsNull) {
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    s.flush();
    s.delete_(ed);
    s.flush();
    EXPECT_EQ(s.get<User>(ed->id), nullptr);
}

TEST_F(SessionTest, CloseRollsBackAndDetaches) {
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    s.flush();
    s.close();
    EXPECT_FALSE(s.contains(ed.get()));
    EXPECT_EQ(rows(s, users), 0);
    s.add(mk("again"));  // usable after close
    s.commit();
    EXPECT_EQ(rows(s, users), 1);
}

TEST_F(SessionTest, DestructorRollsBack) {
    {
        sa::Session s(engine);
        s.add(mk("ed"));
        s.flush();
    }
    sa::Session s(engine);
    EXPECT_EQ(rows(s, users), 0);
}

// ---- merge / refresh ---------------------------------------------------------------------------

TEST_F(SessionTest, MergeDetachedCopiesOntoLoadedInstance) {
    std::int64_t id;
    {
        sa::Session s(engine);
        auto ed = mk("ed", "Ed");
        s.add(ed);
        s.commit();
        id = ed->id;
    }
    sa::Session s(engine);
    auto copy = std::make_shared<User>(User{.id = id, .name = "ed", .fullname = "Edward", .password = ""});
    auto merged = s.merge(copy);
    EXPECT_NE(merged, copy);
    EXPECT_EQ(merged->fullname, "Edward");
    EXPECT_EQ(s.state_of(merged), sa::ObjectState::persistent);
    EXPECT_EQ(s.state_of(copy), sa::ObjectState::detached);  // it carries a key, and is not ours
    EXPECT_TRUE(s.is_modified(merged));
    s.commit();
    EXPECT_EQ(s.connection().execute(sa::select(users.c["fullname"])).scalar<std::string>(), "Edward");
}

TEST_F(SessionTest, MergeOfUnknownKeyIsPending) {
    sa::Session s(engine);
    auto copy = std::make_shared<User>(User{.id = 77, .name = "n", .fullname = "", .password = ""});
    auto merged = s.merge(copy);
    EXPECT_EQ(s.state_of(merged), sa::ObjectState::pending);
    s.commit();
    EXPECT_EQ(db_name(s, 77), "n");
}

TEST_F(SessionTest, RefreshOfDeletedRowIsObjectDeletedError) {
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    s.commit();
    s.connection().execute(users.delete_());
    EXPECT_THROW(s.refresh(ed), sa::ObjectDeletedError);
    EXPECT_THROW(s.refresh(mk("never added")), sa::InvalidRequestError);
}

// ---- autoflush -------------------------------------------------------------------------------

TEST_F(SessionTest, NoAutoflushGuard) {
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    {
        auto guard = s.no_autoflush();
        EXPECT_EQ(s.query<User>().count(), 0);
        EXPECT_EQ(s.state_of(ed), sa::ObjectState::pending);
    }
    EXPECT_EQ(s.query<User>().count(), 1);
}

TEST_F(SessionTest, AutoflushOff) {
    sa::Session s(engine, {.autoflush = false, .expire_on_commit = true});
    s.add(mk("ed"));
    EXPECT_EQ(s.query<User>().count(), 0);
    s.flush();
    EXPECT_EQ(s.query<User>().count(), 1);
}

TEST_F(SessionTest, AutoflushOrderInsertBeforeSelect) {
    sa::Session s(engine);
    s.add(mk("ed"));
    s.query<User>().all();
    auto st = log.statements();
    ASSERT_EQ(st.size(), 2u);
    EXPECT_EQ(st[0].rfind("INSERT", 0), 0u);
    EXPECT_EQ(st[1].rfind("SELECT", 0), 0u);
}

// ---- query -------------------------------------------------------------------------------------

class QueryTest : public SessionTest {
protected:
    void SetUp() override {
        SessionTest::SetUp();
        sa::Session s(engine);
        for (const char* n : {"ed", "wendy", "mary", "fred"}) s.add(mk(n, std::string(n) + " full"));
        s.commit();
        log.clear();
    }
};

TEST_F(QueryTest, OneFirstOneOrNone) {
    sa::Session s(engine);
    EXPECT_THROW(s.query<User>().filter_by({{"name", "nobody"}}).one(), sa::NoResultFound);
    EXPECT_THROW(s.query<User>().one(), sa::MultipleResultsFound);
    EXPECT_EQ(s.query<User>().filter_by({{"name", "nobody"}}).one_or_none(), nullptr);
    EXPECT_EQ(s.query<User>().filter_by({{"name", "nobody"}}).first(), nullptr);
    EXPECT_THROW(s.query<User>().one_or_none(), sa::MultipleResultsFound);
    EXPECT_EQ(s.query<User>().order_by(users.c["name"]).first()->name, "ed");
}

TEST_F(QueryTest, FirstUsesLimitOffset) {
    sa::Session s(engine);
    s.query<User>().filter_by({{"name", "ed"}}).first();
    if (testdb::postgres()) {  // PostgreSQL's LIMIT stands alone, as SQLAlchemy renders it
        EXPECT_NE(log.text().find("WHERE users.name = $1 \n LIMIT $2\n\x1e["), std::string::npos) << log.text();
        EXPECT_NE(log.text().find("('ed', 1)"), std::string::npos);
        return;
    }
    EXPECT_NE(log.text().find("WHERE users.name = ?\n LIMIT ? OFFSET ?\n\x1e["), std::string::npos);
    EXPECT_NE(log.text().find("('ed', 1, 0)"), std::string::npos);
}

TEST_F(QueryTest, FilterOrderLimitOffsetDistinct) {
    sa::Session s(engine);
    auto r = s.query<User>().filter(users.c["name"].like("%e%")).order_by(users.c["name"].desc()).limit(2).offset(1).all();
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0]->name, "fred");
    EXPECT_EQ(r[1]->name, "ed");
    EXPECT_EQ(s.query<User>().distinct().count(), 4);
    EXPECT_EQ(s.query<User>().filter(sa::attr(&User::name) == "mary").one()->fullname, "mary full");
    EXPECT_EQ(s.query<User>().filter_by({{"name", "ed"}, {"fullname", "ed full"}}).count(), 1);
}

TEST_F(QueryTest, CountAndExists) {
    sa::Session s(engine);
    EXPECT_EQ(s.query<User>().count(), 4);
    EXPECT_EQ(s.query<User>().filter(users.c["name"] > "f").count(), 3);
    EXPECT_TRUE(s.query<User>().filter_by({{"name", "ed"}}).exists());
    EXPECT_FALSE(s.query<User>().filter_by({{"name", "zz"}}).exists());
    auto st = log.statements();
    EXPECT_NE(std::find_if(st.begin(), st.end(), [](auto& x) { return x.rfind("SELECT count(*) AS count_1", 0) == 0; }),
              st.end());
}

// filter_by() queries run by a prepared statement the session keeps (a baked query): the SQL
// is the general path's, compiled once; values are bound per call.
TEST_F(QueryTest, FilterByQueriesReuseOneStatementWithTheSameSql) {
    sa::Session s(engine);
    for (const char* n : {"ed", "wendy", "mary", "ed"}) EXPECT_EQ(s.query<User>().filter_by({{"name", n}}).first()->name, n);
    auto st = log.statements();
    ASSERT_EQ(st.size(), 4u);
    for (const auto& x : st) EXPECT_EQ(x, st[0]);
    // Compiled once: the first use may also find it cached (the compiled cache is the
    // process's, and an earlier test in this process may have compiled the same shape).
    EXPECT_LE(log.count_starting("[generated in"), 1u) << log.text();
    EXPECT_GE(log.count_starting("[cached since"), 3u) << log.text();
    EXPECT_EQ(log.count_starting("[generated in") + log.count_starting("[cached since"), 4u) << log.text();
    // The statement a simple query shows is the one it runs.
    auto q = s.query<User>().filter_by({{"name", "ed"}}).filter_by({{"fullname", "ed full"}});
    EXPECT_EQ(q.all().size(), 1u);
    EXPECT_NE(q.statement().compile(engine->dialect())->sql.find("users.name = "), std::string::npos);
    EXPECT_NE(log.statements().back().find("WHERE users.name = ? AND users.fullname = ?"), std::string::npos)
        << log.text();
}

TEST_F(QueryTest, FilterByKeepsIdentityOrderingNullsAndMultipleRows) {
    sa::Session s(engine);
    auto ed = s.query<User>().filter_by({{"name", "ed"}}).one();
    EXPECT_EQ(s.query<User>().filter_by({{"id", ed->id}}).first(), ed);  // the identity map's object
    EXPECT_EQ(s.get<User>(ed->id), ed);
    // A braced list and a Params mean the same: a name given twice keeps its last value.
    EXPECT_EQ(s.query<User>().filter_by({{"name", "zz"}, {"name", "ed"}}).one(), ed);
    const sa::Params by_name{{"name", "zz"}, {"name", "ed"}};
    EXPECT_EQ(s.query<User>().filter_by(by_name).one(), ed);
    try {
        s.query<User>().filter_by({{"nmae", "ed"}});
        FAIL() << "expected InvalidRequestError";
    } catch (const sa::InvalidRequestError& e) {
        EXPECT_NE(std::string(e.what()).find("has no property \"nmae\""), std::string::npos) << e.what();
    }
    // A NULL compares with IS NULL (the general path), not "= NULL".
    s.add(std::make_shared<Address>(Address{.id = 0, .email = "nobody@x", .user_id = std::nullopt}));
    s.add(std::make_shared<Address>(Address{.id = 0, .email = "ed@x", .user_id = ed->id}));
    log.clear();
    auto nulls = s.query<Address>().filter_by({{"user_id", nullptr}}).all();
    ASSERT_EQ(nulls.size(), 1u);
    EXPECT_EQ(nulls[0]->email, "nobody@x");
    EXPECT_NE(log.text().find("addresses.user_id IS NULL"), std::string::npos) << log.text();
    EXPECT_EQ(s.query<Address>().filter_by({{"user_id", ed->id}}).one()->email, "ed@x");
    // Several rows: all() returns each, one() refuses them.
    s.add(mk("ed2", "ed full"));
    EXPECT_EQ(s.query<User>().filter_by({{"fullname", "ed full"}}).all().size(), 2u);  // autoflushed first
    EXPECT_THROW(s.query<User>().filter_by({{"fullname", "ed full"}}).one(), sa::MultipleResultsFound);
    // filter_by after filter stays in order: both criteria apply.
    auto r = s.query<User>().filter(users.c["name"] == "ed2").filter_by({{"fullname", "ed full"}}).all();
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0]->name, "ed2");
    EXPECT_EQ(s.query<User>().filter_by({{"fullname", "ed full"}}).order_by(users.c["id"].desc()).first()->name, "ed2");
}

TEST_F(QueryTest, FilterByOnAKeptQueryLeavesItAsItWas) {
    // A Query is immutable: filter_by() on one kept in a variable returns a new query (on a
    // temporary it may reuse the temporary, which nobody else sees).
    sa::Session s(engine);
    const auto all_users = s.query<User>();
    auto ed_only = all_users.filter_by({{"name", "ed"}});
    auto named = all_users.filter_by(sa::Params{{"fullname", "wendy full"}});
    EXPECT_EQ(all_users.all().size(), 4u);
    EXPECT_EQ(all_users.all().size(), 4u);  // also when its terminal call ran once already
    ASSERT_EQ(ed_only.all().size(), 1u);
    EXPECT_EQ(ed_only.first()->name, "ed");
    EXPECT_EQ(named.one()->name, "wendy");
    // Criteria added to a temporary accumulate; the query they came from keeps its own.
    auto both = ed_only.filter_by({{"fullname", "ed full"}});
    EXPECT_EQ(both.one()->name, "ed");
    EXPECT_EQ(ed_only.filter_by({{"fullname", "wendy full"}}).first(), nullptr);
    EXPECT_EQ(ed_only.one()->name, "ed");
    EXPECT_EQ(s.query<User>().filter_by({{"name", "mary"}}).filter_by({{"fullname", "mary full"}}).one()->name, "mary");
    EXPECT_EQ(s.query<User>().filter_by({{"name", "mary"}}).filter_by({{"fullname", "ed full"}}).first(), nullptr);
    // A statement asked for before filter_by() is not the one after it.
    auto q = s.query<User>();
    EXPECT_EQ(sql(q.statement()).find("WHERE"), std::string::npos);
    auto q2 = std::move(q).filter_by({{"name", "fred"}});
    EXPECT_NE(sql(q2.statement()).find("WHERE users.name = ?"), std::string::npos) << sql(q2.statement());
    EXPECT_EQ(q2.one()->name, "fred");
}

TEST_F(QueryTest, FilterByTermsSurviveCopiesMovesAndGrowth) {
    // The terms a query keeps (two inline, more on the heap) through copies, moves, a third
    // term, and a NULL that sends the query to the general path after two were kept.
    sa::Session s(engine);
    auto one = s.query<User>().filter_by({{"name", "ed"}});
    auto two = one.filter_by({{"fullname", "ed full"}});
    auto three = two.filter_by({{"password", ""}});  // the terms move to the heap here
    auto copied = three;
    auto moved = std::move(copied);
    EXPECT_EQ(one.one()->name, "ed");
    EXPECT_EQ(two.one()->name, "ed");
    EXPECT_EQ(moved.one()->name, "ed");
    EXPECT_EQ(three.filter_by({{"password", "nope"}}).first(), nullptr);
    EXPECT_EQ(three.one()->name, "ed");  // unchanged by the query made from it
    auto four = std::move(moved).filter_by({{"id", 1}});
    EXPECT_EQ(four.all().size(), 1u);
    EXPECT_NE(sql(four.statement()).find("users.name = ? AND users.fullname = ? AND users.password = ? AND users.id = ?"),
              std::string::npos)
        << sql(four.statement());
    // Two kept, then a NULL: the query is rebuilt with all three, IS NULL for the last.
    auto with_null = two.filter_by({{"password", std::nullopt}});
    EXPECT_EQ(with_null.first(), nullptr);
    EXPECT_NE(sql(with_null.statement()).find("users.password IS NULL"), std::string::npos) << sql(with_null.statement());
    EXPECT_NE(sql(with_null.statement()).find("users.name = ?"), std::string::npos);
    auto assigned = s.query<User>();
    assigned = three;  // copy-assigned over a query with no terms
    EXPECT_EQ(assigned.one()->name, "ed");
    assigned = one;    // fewer terms, inline again
    EXPECT_EQ(assigned.all().size(), 1u);
}

TEST_F(QueryTest, FilterByLookupsOfMoreShapesThanTheSessionKeepsEachBindTheirOwnValues) {
    // The session keeps 64 prepared filter_by() lookups (one per mapper, columns in order, and
    // first() or all()); here 128 shapes, twice over: the oldest are dropped and prepared
    // again, and every lookup binds its values to its own columns, two terms inline or more.
    sa::Session s(engine);
    auto ed = s.query<User>().filter_by({{"name", "ed"}}).one();
    auto wendy = s.query<User>().filter_by({{"name", "wendy"}}).one();
    ed->password = "pw-ed";  // every column tells the two apart
    wendy->password = "pw-wendy";
    s.commit();
    const std::array<std::string_view, 4> cols{"id", "name", "fullname", "password"};
    auto value_of = [&](const User& u, std::size_t c) -> sa::Value {
        switch (c) {
            case 0: return u.id;
            case 1: return u.name;
            case 2: return u.fullname;
            default: return u.password;
        }
    };
    std::vector<std::vector<std::size_t>> shapes;
    std::vector<std::size_t> order{0, 1, 2, 3};
    do {  // every ordered choice of 1 to 4 distinct columns, each once
        for (std::size_t len = 1; len <= 4; ++len) {
            std::vector<std::size_t> shape(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(len));
            if (std::find(shapes.begin(), shapes.end(), shape) == shapes.end()) shapes.push_back(shape);
        }
    } while (std::next_permutation(order.begin(), order.end()));
    ASSERT_EQ(shapes.size(), 64u);
    for (int pass = 0; pass < 2; ++pass)
        for (const auto& shape : shapes)
            for (const auto& who : {ed, wendy}) {
                auto q = s.query<User>();
                for (std::size_t c : shape) q = std::move(q).filter_by({{cols[c], value_of(*who, c)}});
                EXPECT_EQ(q.first(), who) << who->name << " by " << shape.size() << " columns";
                auto all = q.all();
                ASSERT_EQ(all.size(), 1u);
                EXPECT_EQ(all[0], who);
            }
    // A shape whose values belong to two different users finds nobody.
    EXPECT_EQ(s.query<User>().filter_by({{"id", ed->id}}).filter_by({{"name", "wendy"}}).first(), nullptr);
}

TEST_F(QueryTest, FilterByStatementsEndWithTheSession) {
    // The prepared statements are the session's: closing it lets the connection go, and the
    // next use prepares again.
    sa::Session s(engine);
    EXPECT_NE(s.query<User>().filter_by({{"name", "ed"}}).first(), nullptr);
    s.close();
    EXPECT_NE(s.query<User>().filter_by({{"name", "mary"}}).first(), nullptr);
    s.close();
}

TEST_F(QueryTest, FilterByUnknownNameIsError) {
    sa::Session s(engine);
    EXPECT_THROW(s.query<User>().filter_by({{"nope", 1}}), sa::InvalidRequestError);
}

TEST_F(QueryTest, BulkDeleteSynchronizesSession) {
    sa::Session s(engine);
    auto ed = s.query<User>().filter_by({{"name", "ed"}}).one();
    auto n = s.query<User>().filter(users.c["name"].in_({"ed", "wendy"})).delete_();
    EXPECT_EQ(n, 2);
    EXPECT_EQ(s.state_of(ed), sa::ObjectState::deleted);
    EXPECT_EQ(s.get<User>(ed->id), nullptr);
    EXPECT_EQ(s.query<User>().count(), 2);
}

TEST_F(QueryTest, BulkUpdateSynchronizesSession) {
    sa::Session s(engine);
    auto ed = s.query<User>().filter_by({{"name", "ed"}}).one();
    std::int64_t old_id = ed->id;
    auto n = s.query<User>().filter_by({{"name", "ed"}}).update({{"fullname", users.c["fullname"] + "!"}});
    EXPECT_EQ(n, 1);
    EXPECT_EQ(ed->fullname, "ed full!");
    EXPECT_EQ(ed->id, old_id);
    EXPECT_FALSE(s.is_modified(ed));
    auto none = s.query<User>().filter_by({{"name", "mary"}}).update({{"fullname", "M"}}, sa::SynchronizeSession::false_);
    EXPECT_EQ(none, 1);
}

TEST_F(QueryTest, UnmappedClassIsError) {
    sa::Session s(engine);
    EXPECT_THROW(s.add(std::make_shared<Unmapped>()), sa::UnmappedClassError);
    EXPECT_THROW(s.query<Unmapped>(), sa::UnmappedClassError);
    EXPECT_THROW(s.get<Unmapped>(1), sa::UnmappedClassError);
}

// ---- savepoints ------------------------------------------------------------------------------

TEST_F(SessionTest, BeginNestedRollbackScopesToTheSavepoint) {
    sa::Session s(engine);
    auto ed = mk("ed", "Ed");
    s.add(ed);
    s.flush();
    {
        auto sp = s.begin_nested();
        ed->fullname = "inside";
        auto w = mk("wendy");
        s.add(w);
        s.flush();
        sp.rollback();
        EXPECT_EQ(ed->fullname, "Ed");
        EXPECT_EQ(s.state_of(w), sa::ObjectState::transient);
    }
    EXPECT_EQ(rows(s, users), 1);
    s.commit();
    EXPECT_EQ(rows(s, users), 1);
}

TEST_F(SessionTest, BeginNestedCommitKeepsWork) {
    sa::Session s(engine);
    {
        auto sp = s.begin_nested();
        s.add(mk("kept"));
        sp.commit();
    }
    {
        auto sp = s.begin_nested();
        s.add(mk("dropped"));
    }  // RAII rollback
    s.commit();
    EXPECT_EQ(rows(s, users), 1);
    EXPECT_EQ(log.count_starting("SAVEPOINT sa_savepoint_"), 2u);
    EXPECT_EQ(log.count_starting("RELEASE SAVEPOINT"), 1u);
    EXPECT_EQ(log.count_starting("ROLLBACK TO SAVEPOINT"), 1u);
}

// ---- sessionmaker, events, Record ------------------------------------------------------------

TEST_F(SessionTest, SessionmakerNeedsBind) {
    sa::sessionmaker maker;
    EXPECT_THROW(maker(), sa::InvalidRequestError);
    maker.configure({.bind = engine, .autoflush = false});
    sa::Session s = maker();
    s.add(mk("ed"));
    EXPECT_EQ(s.query<User>().count(), 0);  // autoflush off from the factory
}

TEST_F(SessionTest, MapperEventsFireDuringFlush) {
    std::vector<std::string> seen;
    sa::Mapper& m = registry.mapper_of<User>();
    sa::listen<User>(m, sa::MapperEvent::before_insert, [&](User& u) { seen.push_back("bi " + u.name); u.fullname = "set by event"; });
    sa::listen<User>(m, sa::MapperEvent::after_insert, [&](User& u) { seen.push_back("ai " + std::to_string(u.id)); });
    sa::listen<User>(m, sa::MapperEvent::before_update, [&](User& u) { seen.push_back("bu " + u.name); });
    sa::listen<User>(m, sa::MapperEvent::after_update, [&](User& u) { seen.push_back("au " + u.name); });
    sa::listen<User>(m, sa::MapperEvent::before_delete, [&](User& u) { seen.push_back("bd " + u.name); });
    sa::listen<User>(m, sa::MapperEvent::after_delete, [&](User& u) { seen.push_back("ad " + u.name); });
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    s.flush();
    EXPECT_EQ(s.connection().execute(sa::select(users.c["fullname"])).scalar<std::string>(), "set by event");
    ed->password = "x";
    s.flush();
    s.delete_(ed);
    s.flush();
    EXPECT_EQ(seen, (std::vector<std::string>{"bi ed", "ai 1", "bu ed", "au ed", "bd ed", "ad ed"}));
}

TEST_F(SessionTest, RecordsThroughTheSession) {
    auto doc = nlohmann::json::parse(R"({"tables": [{"name": "item", "columns": [
        {"name": "id", "type": "Integer", "primary_key": true, "nullable": false},
        {"name": "label", "type": "String", "length": 40, "nullable": true}]}]})");
    sa::MetaData m = sa::MetaData::from_json(doc);
    const sa::Table& item = m.get_table("item");
    m.create_all(*engine);
    registry.map_dynamic(item);
    sa::Session s(engine);
    auto r = std::make_shared<sa::Record>(item);
    r->set("label", "box");
    s.add(r);
    s.commit();
    EXPECT_EQ(r->get<std::int64_t>("id"), 1);
    auto loaded = s.query<sa::Record>(item).filter_by({{"label", "box"}}).one();
    EXPECT_EQ(loaded, r);
    loaded->set("label", "crate");
    EXPECT_TRUE(s.is_modified(loaded));
    s.commit();
    sa::Session s2(engine);
    EXPECT_EQ(s2.query<sa::Record>(item).one()->get<std::string>("label"), "crate");
}

TEST_F(SessionTest, EveryKindOfValueSurvivesTheSessionsCopyOfTheRow) {
    // The session keeps a packed copy of each loaded row (for dirty checks and the identity
    // map). Rows of few columns (one larger than an arena block), of many, and one too large
    // for short offsets; extreme integers, reals, empty and long text, blobs and NULLs: each
    // loads equal, is clean, and a change to one column UPDATEs that column alone; keys find
    // their objects.
    sa::MetaData m;
    const sa::Table& narrow = m.table("narrow", sa::Column("id", sa::BigInteger(), sa::primary_key()),
                                      sa::Column("a", sa::BigInteger()), sa::Column("t", sa::String()));
    const sa::Table& wide = m.table("wide", sa::Column("id", sa::BigInteger(), sa::primary_key()),
                                    sa::Column("imin", sa::BigInteger()), sa::Column("imax", sa::BigInteger()),
                                    sa::Column("ineg", sa::BigInteger()), sa::Column("zero", sa::BigInteger()),
                                    sa::Column("r", sa::Float()), sa::Column("empty", sa::String()),
                                    sa::Column("big", sa::String()), sa::Column("b", sa::LargeBinary()),
                                    sa::Column("n", sa::String()), sa::Column("tail", sa::BigInteger()));
    m.create_all(*engine);
    registry.map_dynamic(narrow);
    registry.map_dynamic(wide);
    const std::string big(70000, 'x');  // the row passes 64 KiB: 4-byte offsets
    const sa::Blob blob{0, 1, 2, 255};
    // (0 is not among them: an autoincrement key of 0 means "not assigned yet".)
    const std::vector<std::int64_t> narrow_keys{-7, 1, 127, 128, 1ll << 40, INT64_MIN, INT64_MAX};
    // One row of three columns larger than a block of the session's arena (64 KiB): packed into
    // a block of its own, between rows packed into the shared ones.
    auto text_of = [&](std::int64_t k) { return k == 127 ? big + "!" + big : "row " + std::to_string(k); };
    {
        sa::Session s(engine);
        for (std::int64_t k : narrow_keys) {
            auto r = std::make_shared<sa::Record>(narrow);
            r->set("id", k);
            r->set("a", k / 3);
            r->set("t", text_of(k));
            s.add(r);
        }
        for (int i = 1; i <= 2; ++i) {
            auto r = std::make_shared<sa::Record>(wide);
            r->set("id", i);
            r->set("imin", INT64_MIN);
            r->set("imax", INT64_MAX);
            r->set("ineg", -1);
            r->set("zero", 0);
            r->set("r", -2.5);
            r->set("empty", "");
            r->set("big", i == 1 ? big : std::string("short"));
            r->set("b", blob);
            r->set("n", sa::Value());
            r->set("tail", 42);
            s.add(r);
        }
        s.commit();
    }
    sa::Session s(engine);
    auto rows = s.query<sa::Record>(wide).order_by(wide.c["id"]).all();
    ASSERT_EQ(rows.size(), 2u);
    for (const auto& r : rows) {
        EXPECT_EQ(r->get<std::int64_t>("imin"), INT64_MIN);
        EXPECT_EQ(r->get<std::int64_t>("imax"), INT64_MAX);
        EXPECT_EQ(r->get<std::int64_t>("ineg"), -1);
        EXPECT_EQ(r->get<std::int64_t>("zero"), 0);
        EXPECT_EQ(r->get<double>("r"), -2.5);
        EXPECT_EQ(r->get<std::string>("empty"), "");
        EXPECT_EQ(r->get<sa::Blob>("b"), blob);
        EXPECT_TRUE(r->value("n").is_null());
        EXPECT_EQ(r->get<std::int64_t>("tail"), 42);
        EXPECT_FALSE(s.is_modified(r));
    }
    EXPECT_EQ(rows[0]->get<std::string>("big"), big);
    auto narrows = s.query<sa::Record>(narrow).all();
    ASSERT_EQ(narrows.size(), narrow_keys.size());
    std::map<std::int64_t, std::shared_ptr<sa::Record>> by_key;
    for (const auto& r : narrows) {
        EXPECT_FALSE(s.is_modified(r));
        by_key[r->get<std::int64_t>("id")] = r;
    }
    for (std::int64_t k : narrow_keys) {  // loaded again: the identity map gives the same objects
        SCOPED_TRACE(k);
        auto r = s.query<sa::Record>(narrow).filter_by({{"id", k}}).one_or_none();
        ASSERT_TRUE(r);
        EXPECT_EQ(r, by_key[k]) << k;
        EXPECT_EQ(r->get<std::string>("t"), text_of(k));
        EXPECT_EQ(r->get<std::int64_t>("a"), k / 3);
    }
    rows[0]->set("tail", 43);     // the last of 11 values, after the 70000-byte one
    rows[1]->set("ineg", -2);
    by_key[INT64_MIN]->set("t", "changed");
    log.clear();
    s.flush();
    EXPECT_EQ(log.statements(), (std::vector<std::string>{"UPDATE narrow SET t=? WHERE narrow.id = ?",
                                                          "UPDATE wide SET tail=? WHERE wide.id = ?",
                                                          "UPDATE wide SET ineg=? WHERE wide.id = ?"}));
    s.commit();
    sa::Session s2(engine);
    auto again = s2.query<sa::Record>(wide).order_by(wide.c["id"]).all();
    EXPECT_EQ(again[0]->get<std::int64_t>("tail"), 43);
    EXPECT_EQ(again[1]->get<std::int64_t>("ineg"), -2);
    EXPECT_EQ(s2.query<sa::Record>(narrow).filter_by({{"id", INT64_MIN}}).one()->get<std::string>("t"), "changed");
}

TEST_F(SessionTest, RecordsOverAReflectedSchema) {
    {
        sa::Session s(engine);
        s.add(mk("ed"));
        s.commit();
    }
    sa::MetaData r;
    r.reflect(*engine);
    registry.map_dynamic(r.get_table("users"));
    sa::Session s(engine);
    auto rec = s.query<sa::Record>(r.get_table("users")).one();
    EXPECT_EQ(rec->get<std::string>("name"), "ed");
    s.delete_(rec);
    s.commit();
    EXPECT_EQ(rows(s, users), 0);
}

TEST_F(SessionTest, OptionalMembersRoundTrip) {
    sa::Session s(engine);
    auto u = mk("p");
    s.add(u);
    s.flush();
    auto a = std::make_shared<Address>(Address{.id = 0, .email = "e", .user_id = std::nullopt});
    s.add(a);
    s.commit();
    sa::Session s2(engine);
    auto loaded = s2.get<Address>(a->id);
    EXPECT_EQ(loaded->user_id, std::nullopt);
    loaded->user_id = u->id;
    s2.commit();
    EXPECT_EQ(s2.connection().execute(sa::select(addresses.c["user_id"])).scalar<std::int64_t>(), u->id);
}

// ---- bulk operations -----------------------------------------------------------------------

TEST_F(SessionTest, BulkInsertMappingsWritesExactlyTheRows) {
    sa::Session s(engine);
    std::vector<sa::Params> rows_in = {{{"name", "a"}}, {{"name", "b"}, {"fullname", "B"}}, {{"name", "c"}}};
    s.bulk_insert_mappings<User>(rows_in);
    EXPECT_EQ(log.count_starting("INSERT INTO users (name) VALUES (?)"), 2u);  // one statement per shape
    EXPECT_EQ(log.count_starting("INSERT INTO users (name, fullname) VALUES (?, ?)"), 1u);
    s.commit();
    auto got = s.connection().execute(sa::select(users.c["name"], users.c["fullname"]).order_by(users.c["name"])).all();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[1].get<std::string>("fullname"), "B");
    EXPECT_TRUE(got[0]["fullname"].is_null());
    EXPECT_TRUE(s.new_objects().empty());  // no identity map involvement
    EXPECT_THROW(s.bulk_insert_mappings<User>({{{"bogus", 1}}}), sa::ArgumentError);
}

// Consecutive rows of one shape run as one batch: the rows still go in the order given (their
// new keys say so), and a failing row stops the call with its own error, the rows before it
// written in the transaction and gone with its rollback, the rows after it not run.
TEST_F(SessionTest, BulkInsertMappingsRunsTheRowsInOrderAndStopsAtAFailingOne) {
    sa::Session s(engine);
    std::vector<sa::Params> ok = {{{"name", "a"}},
                                  {{"name", "b"}},
                                  {{"name", "c"}, {"fullname", "C"}},
                                  {{"name", "d"}},
                                  {{"name", "e"}, {"fullname", "E"}},
                                  {{"name", "f"}, {"fullname", "F"}}};
    s.bulk_insert_mappings<User>(ok);
    auto got = s.connection().execute(sa::select(users.c["id"], users.c["name"], users.c["fullname"]).order_by(users.c["id"])).all();
    ASSERT_EQ(got.size(), 6u);
    const char* names[] = {"a", "b", "c", "d", "e", "f"};
    for (std::size_t i = 0; i < 6; ++i) {
        EXPECT_EQ(got[i].get<std::int64_t>(0), static_cast<std::int64_t>(i + 1));
        EXPECT_EQ(got[i].get<std::string>(1), names[i]);
    }
    EXPECT_TRUE(got[1][2].is_null());
    EXPECT_EQ(got[5].get<std::string>(2), "F");
    s.commit();

    std::vector<sa::Params> bad = {{{"name", "g"}}, {{"name", "h"}}, {{"name", "a"}}, {{"name", "i"}}};
    try {
        s.bulk_insert_mappings<User>(bad);
        FAIL() << "a second 'a' must break the UNIQUE constraint";
    } catch (const sa::IntegrityError& e) {
        std::string what = e.what();
        for (char& ch : what) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        EXPECT_NE(what.find("unique"), std::string::npos) << e.what();
        if (!testdb::postgres()) {
            EXPECT_NE(what.find("('a',)"), std::string::npos) << e.what();  // the failing row's parameters
        }
    }
    if (!testdb::postgres()) {  // PostgreSQL refuses every statement of a failed transaction
        EXPECT_EQ(rows(s, users), 8);  // g and h ran; i did not
        EXPECT_EQ(db_name(s, 8), "h");
    }
    s.rollback();
    EXPECT_EQ(rows(s, users), 6);
    s.bulk_insert_mappings<User>({{{"name", "i"}}});  // the session goes on after the rollback
    s.commit();
    EXPECT_EQ(rows(s, users), 7);
}

TEST_F(SessionTest, BulkInsertReturnDefaults) {
    sa::Session s(engine);
    std::vector<sa::Params> rows_in = {{{"name", "a"}}, {{"name", "b"}}};
    s.bulk_insert_mappings<User>(rows_in, true);
    EXPECT_EQ(rows_in[0].at("id"), sa::Value(1));
    EXPECT_EQ(rows_in[1].at("id"), sa::Value(2));
}

TEST_F(SessionTest, BulkUpdateMappings) {
    sa::Session s(engine);
    s.bulk_insert_mappings<User>({{{"name", "a"}}, {{"name", "b"}}});
    s.bulk_update_mappings<User>({{{"id", 1}, {"fullname", "A"}}, {{"id", 2}, {"fullname", "B"}, {"password", "p"}}});
    s.commit();
    auto got = s.connection().execute(sa::select(users.c["fullname"], users.c["password"]).order_by(users.c["id"])).all();
    EXPECT_EQ(got[0].get<std::string>(0), "A");
    EXPECT_EQ(got[1].get<std::string>(1), "p");
    EXPECT_TRUE(got[0][1].is_null());
    try {
        s.bulk_update_mappings<User>({{{"fullname", "no key"}}});
        FAIL();
    } catch (const sa::ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("primary key column 'id'"), std::string::npos);
    }
}

// Rows with the keys of the row before them reuse its statement and value positions; any other
// row (keys reordered, swapped for others of the same count, unknown) is looked at by name.
TEST_F(SessionTest, BulkMappingsReadEachRowByItsOwnKeys) {
    sa::Session s(engine);
    std::vector<sa::Params> ins = {{{"name", "a"}, {"fullname", "A"}},
                                   {{"name", "b"}, {"fullname", "B"}},
                                   {{"fullname", "C"}, {"name", "c"}},   // same keys, other order
                                   {{"name", "d"}, {"password", "pd"}},  // as many keys, another one
                                   {{"name", "e"}, {"password", "pe"}},
                                   {{"name", "f"}}};
    s.bulk_insert_mappings<User>(ins, true);  // return_defaults appends "id" to each row
    EXPECT_EQ(ins[5].at("id"), sa::Value(6));
    s.bulk_update_mappings<User>({{{"id", 1}, {"fullname", "A1"}},
                                  {{"fullname", "B1"}, {"id", 2}},
                                  {{"id", 3}},  // only the key: nothing to update
                                  {{"id", 4}},
                                  {{"id", 5}, {"fullname", "E1"}},
                                  {{"id", 6}, {"password", "pf"}}});
    auto got = s.connection()
                   .execute(sa::select(users.c["name"], users.c["fullname"], users.c["password"]).order_by(users.c["id"]))
                   .all();
    ASSERT_EQ(got.size(), 6u);
    const char* want[6][3] = {{"a", "A1", ""}, {"b", "B1", ""}, {"c", "C", ""},
                              {"d", "", "pd"}, {"e", "E1", "pe"}, {"f", "", "pf"}};
    for (std::size_t r = 0; r < 6; ++r)
        for (std::size_t k = 0; k < 3; ++k) {
            if (*want[r][k]) EXPECT_EQ(got[r].get<std::string>(k), want[r][k]) << r << "," << k;
            else EXPECT_TRUE(got[r][k].is_null()) << r << "," << k;
        }
    s.commit();
    EXPECT_THROW(s.bulk_insert_mappings<User>({{{"name", "g"}}, {{"name", "h"}}, {{"nome", "i"}}}), sa::ArgumentError);
    EXPECT_THROW(s.bulk_update_mappings<User>({{{"id", 1}, {"name", "x"}}, {{"name", "y"}, {"fullname", "z"}}}),
                 sa::ArgumentError);  // the second has no key, though as many keys as the first
    s.rollback();  // what ran before the bad row is undone with the transaction
    EXPECT_EQ(rows(s, users), 6);
    EXPECT_EQ(s.connection().execute(sa::select(users.c["name"]).where(users.c["id"] == 1)).scalar<std::string>(), "a");
}

TEST_F(SessionTest, BulkSaveObjectsInsertsAndUpdates) {
    sa::Session s(engine);
    std::vector<std::shared_ptr<User>> objs = {mk("a"), mk("b")};
    s.bulk_save_objects(objs);
    EXPECT_EQ(objs[0]->id, 1);
    EXPECT_EQ(objs[1]->id, 2);
    EXPECT_FALSE(s.contains(objs[0].get()));  // bulk operations do not attach objects
    auto loaded = s.get<User>(1);
    loaded->fullname = "L";
    s.bulk_save_objects(std::vector<std::shared_ptr<User>>{loaded});
    s.commit();
    EXPECT_EQ(s.connection().execute(sa::select(users.c["fullname"]).where(users.c["id"] == 1)).scalar<std::string>(), "L");
    EXPECT_EQ(rows(s, users), 2);
}

// ---- more state and identity cases ----------------------------------------------------------

TEST_F(SessionTest, CompositeKeyObjectsUpdateAndDelete) {
    sa::Session s(engine);
    auto p = std::make_shared<Pair>(Pair{.a = 1, .b = "x", .v = "one"});
    s.add(p);
    s.commit();
    p->v = "uno";
    log.clear();
    s.flush();
    EXPECT_EQ(log.statements(), std::vector<std::string>{"UPDATE pairs SET v=? WHERE pairs.a = ? AND pairs.b = ?"});
    s.delete_(p);
    log.clear();
    s.flush();
    EXPECT_EQ(log.statements(), std::vector<std::string>{"DELETE FROM pairs WHERE pairs.a = ? AND pairs.b = ?"});
    s.commit();
    EXPECT_EQ(rows(s, pairs), 0);
}

// SQLAlchemy's unit of work sorts a mapper's persistent objects by primary key: UPDATEs and
// DELETEs go out in key order, whatever order the objects were loaded or changed in (two
// sessions then lock rows in the same order).
TEST_F(SessionTest, UpdatesAndDeletesGoOutInPrimaryKeyOrder) {
    {
        sa::Session s(engine);
        for (auto n : {"a", "b", "c", "d", "e"}) s.add(mk(n));
        s.commit();
    }
    auto params = [&] {  // the parameter lines of the statements logged since log.clear()
        std::vector<std::string> out;
        for (const auto& l : log.lines())
            if (!l.empty() && l[0] == '[') out.push_back(l.substr(l.find("] ") + 2));
        return out;
    };
    sa::Session s(engine);
    auto all = s.query<User>().order_by(users.c["id"].desc()).all();  // tracked 5, 4, 3, 2, 1
    ASSERT_EQ(all.size(), 5u);
    for (int i : {2, 0, 4, 1, 3}) all[static_cast<std::size_t>(i)]->fullname = "F" + all[static_cast<std::size_t>(i)]->name;
    log.clear();
    s.flush();
    EXPECT_EQ(params(), (std::vector<std::string>{"('Fa', 1)", "('Fb', 2)", "('Fc', 3)", "('Fd', 4)", "('Fe', 5)"}));
    for (int i : {3, 0, 2}) s.delete_(all[static_cast<std::size_t>(i)]);  // ids 2, 5, 3
    log.clear();
    s.flush();
    EXPECT_EQ(params(), (std::vector<std::string>{"(2,)", "(3,)", "(5,)"}));
    auto f = mk("f"), g = mk("g");
    s.add(f);
    s.add(g);
    s.commit();
    ASSERT_TRUE(f->id > 4 && g->id > f->id);
    {
        // Loaded in neither order (the integer keys are sorted, not just checked or reversed).
        sa::Session t(engine);
        std::vector<std::shared_ptr<User>> got;
        for (std::int64_t id : {f->id, std::int64_t{1}, g->id, std::int64_t{4}}) {  // 2 and 3 are gone
            got.push_back(t.get<User>(id));
            ASSERT_TRUE(got.back()) << id;
        }
        for (auto& u : got) u->fullname = "G" + u->name;
        log.clear();
        t.flush();
        EXPECT_EQ(params(), (std::vector<std::string>{"('Ga', 1)", "('Gd', 4)", "('Gf', " + std::to_string(f->id) + ")",
                                                      "('Gg', " + std::to_string(g->id) + ")"}));
    }
    // A composite key of an integer and a string: by the first column, then the second.
    for (auto [a, b] : std::vector<std::pair<int, std::string>>{{1, "b"}, {1, "a"}, {2, "a"}, {0, "z"}})
        s.add(std::make_shared<Pair>(Pair{.a = a, .b = b, .v = "old"}));
    s.commit();
    auto ps = s.query<Pair>().order_by(pairs.c["a"].desc(), pairs.c["b"].desc()).all();
    for (auto& p : ps) p->v = "new";
    log.clear();
    s.flush();
    EXPECT_EQ(params(), (std::vector<std::string>{"('new', 0, 'z')", "('new', 1, 'a')", "('new', 1, 'b')",
                                                  "('new', 2, 'a')"}));
}

TEST_F(SessionTest, MergeOfATrackedObjectReturnsIt) {
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    EXPECT_EQ(s.merge(ed), ed);
}

TEST_F(SessionTest, ExpiredObjectModifiedIsStillFlushed) {
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    s.commit();  // expired
    ed->fullname = "after commit";
    s.commit();
    sa::Session s2(engine);
    EXPECT_EQ(s2.get<User>(ed->id)->fullname, "after commit");
}

TEST_F(SessionTest, NestedNoAutoflushGuards) {
    sa::Session s(engine);
    s.add(mk("ed"));
    {
        auto g1 = s.no_autoflush();
        {
            auto g2 = s.no_autoflush();
        }
        EXPECT_EQ(s.query<User>().count(), 0);
    }
    EXPECT_EQ(s.query<User>().count(), 1);
}

TEST_F(SessionTest, ExpungeAllThenQueryGivesNewInstances) {
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    s.commit();
    s.expunge_all();
    auto again = s.query<User>().one();
    EXPECT_NE(again, ed);
    EXPECT_EQ(again->id, ed->id);
}

TEST_F(SessionTest, NothingDirtyAfterRollback) {
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    s.commit();
    ed->fullname = "x";
    s.rollback();
    EXPECT_TRUE(s.dirty().empty());
    s.rollback();  // no transaction: harmless
}

TEST_F(SessionTest, AddingTwiceIsANoOp) {
    sa::Session s(engine);
    auto ed = mk("ed");
    s.add(ed);
    s.add(ed);
    s.commit();
    EXPECT_EQ(rows(s, users), 1);
}

TEST_F(SessionTest, MovedSessionKeepsItsObjects) {
    sa::Session a(engine);
    auto ed = mk("ed");
    a.add(ed);
    sa::Session b = std::move(a);
    EXPECT_EQ(b.state_of(ed), sa::ObjectState::pending);
    b.commit();
    EXPECT_EQ(rows(b, users), 1);
}

TEST_F(SessionTest, CommitFlushesThenCommits) {
    sa::Session s(engine);
    s.add(mk("ed"));
    s.commit();
    auto l = log.lines();
    ASSERT_GE(l.size(), 4u);
    EXPECT_EQ(l[0], "BEGIN (implicit)");
    EXPECT_EQ(l.back(), "COMMIT");
}

TEST_F(SessionTest, NullIntoNonOptionalMemberIsAClearError) {
    sa::Session s(engine);
    s.connection().execute(users.insert(), {{"name", "nofull"}});  // fullname is NULL in the row
    try {
        s.query<User>().all();  // User::fullname is a std::string, not optional
        FAIL() << "expected ArgumentError";
    } catch (const sa::ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("users.fullname"), std::string::npos);
    }
    EXPECT_EQ(s.query<User>().count(), 1);  // the session is still usable
}

TEST_F(SessionTest, ReloadedExpiredObjectKeepsIdentity) {
    sa::Session s(engine);
    auto ed = mk("ed", "one");
    s.add(ed);
    s.commit();
    s.connection().execute(users.update().values({{"fullname", "two"}}));
    auto again = s.query<User>().filter_by({{"name", "ed"}}).one();
    EXPECT_EQ(again, ed);
    EXPECT_EQ(ed->fullname, "two");
    EXPECT_FALSE(s.is_modified(ed));  // the reload is the new snapshot
    EXPECT_EQ(s.get<User>(ed->id), ed);
}
