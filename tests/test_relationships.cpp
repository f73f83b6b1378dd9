// Relationships (API.md section 8): Ref and Collection, back_populates, save-update and delete
// cascades, orphans, lazy loading, detached access. Each test checks the SQL emitted and rows.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "relationship_fixtures.hpp"

#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>


TEST_F(Relationships, ApiSection8SaveCascadeBackPopulatesAndOrder) {
    sa::Session session(engine);
    auto jack = std::make_shared<User>(User{.name = "jack", .fullname = "Jack Bean"});
    jack->addresses = {addr("jack@google.com"), addr("j25@yahoo.com")};
    session.add(jack);                                   // save-update cascade: 3 pending objects
    EXPECT_EQ(session.new_objects().size(), 3u);
    EXPECT_EQ(jack->addresses[1]->user.get(), jack);     // back_populates filled in
    session.commit();
    auto st = sql.statements();
    ASSERT_EQ(st.size(), 3u);
    EXPECT_EQ(st[0], "INSERT INTO users (name, fullname) VALUES (?, ?)");
    EXPECT_EQ(st[1], "INSERT INTO addresses (email_address, user_id) VALUES (?, ?)");
    EXPECT_EQ(rows("addresses", "user_id = " + std::to_string(jack->id)), 2);
    sql.clear();
    EXPECT_EQ(jack->addresses.size(), 2u);               // after commit: one lazy SELECT
    ASSERT_EQ(sql.count("SELECT"), 1u);
    EXPECT_NE(sql.statements()[0].find("WHERE addresses.user_id = ? ORDER BY addresses.id"), std::string::npos)
        << sql.statements()[0];
    EXPECT_EQ(jack->addresses[0]->email_address, "jack@google.com");
    EXPECT_EQ(jack->addresses[0]->user.get(), jack);
    // The rest of the section, line by line.
    sql.clear();
    auto found = session.query<User>().join(&User::addresses)
                     .filter(sa::attr(&Address::email_address) == "jack@google.com").all();
    ASSERT_EQ(found.size(), 1u);
    EXPECT_NE(sql.statements().back().find("JOIN addresses ON users.id = addresses.user_id"), std::string::npos);
    {
        sa::Session s2(engine);
        sql.clear();
        auto users_ = s2.query<User>().options(sa::selectinload(&User::addresses)).all();  // exactly 2 SELECTs
        EXPECT_EQ(sql.count("SELECT"), 2u);
    }
    {
        sa::Session s3(engine);
        sql.clear();
        auto addrs = s3.query<Address>().options(sa::joinedload(&Address::user)).all();  // 1 SELECT, LEFT OUTER JOIN
        EXPECT_EQ(sql.count("SELECT"), 1u);
        EXPECT_NE(sql.text().find("LEFT OUTER JOIN users AS users_1"), std::string::npos);
        EXPECT_EQ(addrs[0]->user->name, "jack");
    }
    sql.clear();
    auto mine = session.query<Address>().filter(sa::attr(&Address::user) == jack).all();  // addresses.user_id = ?
    EXPECT_EQ(mine.size(), 2u);
    auto google = session.query<User>()
                      .filter(sa::attr(&User::addresses).any(sa::attr(&Address::email_address).like("%@google.com")))
                      .all();
    EXPECT_EQ(google.size(), 1u);
    EXPECT_NE(sql.statements().back().find("EXISTS (SELECT"), std::string::npos);
    jack->addresses.erase(jack->addresses.begin());  // delete-orphan: DELETE at the next flush
    sql.clear();
    session.flush();
    EXPECT_EQ(sql.count("DELETE FROM addresses"), 1u);
    session.delete_(jack);
    sql.clear();
    session.commit();  // DELETE addresses first, then users
    auto st2 = sql.statements();
    ASSERT_GE(st2.size(), 2u);
    EXPECT_LT(sql.text().find("DELETE FROM addresses"), sql.text().find("DELETE FROM users"));
    EXPECT_EQ(rows("users"), 0);
    EXPECT_EQ(rows("addresses"), 0);
}

TEST_F(Relationships, ManyToOneAssignmentFillsTheCollectionAndTheForeignKey) {
    sa::Session s(engine);
    auto jack = std::make_shared<User>(User{.name = "jack"});
    s.add(jack);
    s.commit();
    auto a = addr("a@x");
    s.add(a);
    a->user = jack;                                      // instrumented: the other side at once
    EXPECT_TRUE(jack->addresses.contains(a));
    s.commit();
    EXPECT_EQ(a->user_id, jack->id);
    EXPECT_EQ(rows("addresses", "user_id = " + std::to_string(jack->id)), 1);
}

TEST_F(Relationships, ManyToOneFromTheIdentityMapCostsNoSql) {
    sa::Session s(engine);
    auto jack = std::make_shared<User>(User{.name = "jack"});
    jack->addresses.push_back(addr("a@x"));
    s.add(jack);
    s.commit();
    sa::Session s2(engine);
    auto u = s2.get<User>(jack->id);
    auto a = s2.query<Address>().one();
    sql.clear();
    EXPECT_EQ(a->user.get(), u);
    EXPECT_EQ(sql.count("SELECT"), 0u);
}

TEST_F(Relationships, AppendingToAPersistentParentCascadesWithoutAdd) {
    sa::Session s(engine);
    auto jack = std::make_shared<User>(User{.name = "jack"});
    s.add(jack);
    s.commit();
    auto a = addr("new@x");
    jack->addresses.push_back(a);                        // loads the collection, then appends
    EXPECT_EQ(s.state_of(a), sa::ObjectState::pending);
    EXPECT_EQ(a->user.get(), jack);
    s.commit();
    EXPECT_EQ(rows("addresses", "user_id = " + std::to_string(jack->id)), 1);
}

TEST_F(Relationships, DeleteOrphanAndDeleteCascade) {
    sa::Session s(engine);
    auto jack = std::make_shared<User>(User{.name = "jack"});
    jack->addresses = {addr("a@x"), addr("b@x"), addr("c@x")};
    s.add(jack);
    s.commit();
    jack->addresses.erase(jack->addresses.begin());      // delete-orphan: DELETE at the next flush
    sql.clear();
    s.flush();
    EXPECT_EQ(sql.count("DELETE FROM addresses"), 1u);
    // Flushed, not committed: read inside the session's transaction (another connection on a
    // server would not see it yet).
    EXPECT_EQ(s.scalar<std::int64_t>(sa::text("SELECT count(*) FROM addresses")), 2);
    // A pending orphan is never inserted.
    auto temp = addr("temp@x");
    jack->addresses.push_back(temp);
    jack->addresses.remove(temp);
    s.delete_(jack);
    sql.clear();
    s.commit();                                          // DELETE addresses first, then users
    auto st = sql.statements();
    ASSERT_EQ(st.size(), 3u);
    EXPECT_EQ(st[0].rfind("DELETE FROM addresses", 0), 0u);
    EXPECT_EQ(st[1].rfind("DELETE FROM addresses", 0), 0u);
    EXPECT_EQ(st[2].rfind("DELETE FROM users", 0), 0u);
    EXPECT_EQ(rows("addresses"), 0);
    EXPECT_EQ(rows("users"), 0);
    EXPECT_EQ(sql.count("INSERT"), 0u);
}

TEST_F(Relationships, DetachedUnloadedCollectionIsAnError) {
    std::shared_ptr<User> jack;
    {
        sa::Session s(engine);
        jack = std::make_shared<User>(User{.name = "jack"});
        jack->addresses.push_back(addr("a@x"));
        s.add(jack);
        s.commit();  // expires: the collection will be loaded from the row... but the session ends
        jack = s.get<User>(jack->id);
    }
    sa::Session other(engine);
    auto fresh_jack = other.get<User>(jack->id);
    other.close();
    try {
        (void)fresh_jack->addresses.size();
        FAIL() << "expected DetachedInstanceError";
    } catch (const sa::DetachedInstanceError& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("selectinload"), std::string::npos) << msg;
        EXPECT_NE(msg.find("addresses"), std::string::npos) << msg;
    }
}

TEST_F(Relationships, BidirectionalPairDoesNotLeak) {
    std::weak_ptr<User> wu;
    std::weak_ptr<Address> wa;
    {
        sa::Session s(engine);
        auto jack = std::make_shared<User>(User{.name = "jack"});
        auto a = addr("a@x");
        jack->addresses.push_back(a);
        s.add(jack);
        s.commit();
        a->user.get();
        wu = jack;
        wa = a;
    }
    EXPECT_TRUE(wu.expired());
    EXPECT_TRUE(wa.expired());
}

// The flush lets go of a new parent nobody holds; its children, held by its collection until
// then, stay in the session until the next flush (or sweep) lets them go too, and reach the
// parent by its key.
TEST_F(Relationships, AParentNobodyHoldsIsLetGoByItsFlushAndItsChildrenStillReachIt) {
    sa::Session s(engine);
    std::weak_ptr<User> wu;
    std::weak_ptr<Address> wa;
    {
        auto jack = std::make_shared<User>(User{.name = "jack"});
        jack->addresses = {addr("a@x"), addr("b@x")};
        wu = jack;
        wa = jack->addresses[0];
        s.add(jack);
    }
    s.flush();
    EXPECT_TRUE(wu.expired());
    EXPECT_FALSE(wa.expired());  // held by the parent's collection when the flush ended
    auto in_tx = [&](const std::string& sql) {  // the session's transaction sees its flush
        return s.connection().execute(sa::text(sql)).scalar<std::int64_t>();
    };
    EXPECT_EQ(in_tx("SELECT count(*) FROM users"), 1);
    EXPECT_EQ(in_tx("SELECT count(*) FROM addresses WHERE user_id IS NOT NULL"), 2);
    auto a = s.query<Address>().filter_by({{"email_address", "a@x"}}).one();  // its autoflush let it go
    EXPECT_TRUE(wa.expired());
    ASSERT_TRUE(a->user_id);
    sql.clear();
    auto u = a->user.get();  // loaded again, by key
    ASSERT_TRUE(u);
    EXPECT_EQ(u->id, *a->user_id);
    EXPECT_EQ(u->name, "jack");
    EXPECT_EQ(sql.count("SELECT"), 1u);
    s.commit();
    EXPECT_EQ(rows("addresses"), 2);
}

TEST_F(Relationships, RollbackExpungesCascadedChildren) {
    sa::Session s(engine);
    auto jack = std::make_shared<User>(User{.name = "jack"});
    jack->addresses = {addr("a@x")};
    s.add(jack);
    s.flush();
    s.rollback();
    EXPECT_EQ(s.state_of(jack->addresses[0]), sa::ObjectState::transient);
    EXPECT_EQ(rows("addresses"), 0);
}

TEST_F(Relationships, ErrorsNameTheRelationship) {
    EXPECT_THROW(sa::cascade("all, delete-orphans"), sa::ArgumentError);
    EXPECT_THROW(sa::cascade("delete-orphan"), sa::ArgumentError);
}

TEST_F(Relationships, RelationshipExpressions) {
    sa::Session s(engine);
    auto jack = std::make_shared<User>(User{.name = "jack"});
    jack->addresses = {addr("jack@google.com"), addr("j25@yahoo.com")};
    auto ed = std::make_shared<User>(User{.name = "ed"});
    ed->addresses = {addr("ed@yahoo.com")};
    s.add_all({jack, ed});
    s.commit();
    EXPECT_EQ(sa::select(addresses.c["id"]).where(sa::attr(&Address::user) == jack).to_string(sa::sqlite_dialect()),
              "SELECT addresses.id \nFROM addresses \nWHERE addresses.user_id = ?");
    EXPECT_EQ(s.query<Address>().filter(sa::attr(&Address::user) == jack).count(), 2);
    EXPECT_EQ(s.query<Address>().filter(sa::attr(&Address::user) == nullptr).count(), 0);
    auto q = s.query<User>().filter(sa::attr(&User::addresses).any(sa::attr(&Address::email_address).like("%@google.com")));
    EXPECT_EQ(q.statement().to_string(sa::sqlite_dialect()),
              "SELECT users.id, users.name, users.fullname \nFROM users \nWHERE EXISTS (SELECT * \nFROM addresses "
              "\nWHERE users.id = addresses.user_id AND addresses.email_address LIKE ?)");
    auto google = q.all();
    ASSERT_EQ(google.size(), 1u);
    EXPECT_EQ(google[0], jack);
    EXPECT_EQ(s.query<Address>().filter(sa::attr(&Address::user).has(sa::attr(&User::name) == "ed")).one()->email_address,
              "ed@yahoo.com");
    sql.clear();
    auto joined = s.query<User>().join(&User::addresses)
                      .filter(sa::attr(&Address::email_address) == "jack@google.com").all();
    ASSERT_EQ(joined.size(), 1u);
    EXPECT_EQ(joined[0], jack);
    EXPECT_NE(sql.statements().back().find("FROM users JOIN addresses ON users.id = addresses.user_id"), std::string::npos)
        << sql.statements().back();
}

TEST_F(Relationships, SelectinloadIsTwoSelects) {
    {
        sa::Session s(engine);
        for (int i = 0; i < 1200; ++i) {  // more than two batches of 500
            auto u = std::make_shared<User>(User{.name = "u" + std::to_string(i)});
            u->addresses = {addr("a" + std::to_string(i)), addr("b" + std::to_string(i))};
            s.add(u);
        }
        s.commit();
    }
    sa::Session s(engine);
    sql.clear();
    auto all = s.query<User>().options(sa::selectinload(&User::addresses)).all();
    EXPECT_EQ(sql.count("SELECT"), 4u);  // the users, then 3 IN queries of at most 500 keys
    sql.clear();
    std::size_t n = 0;
    for (const auto& u : all) {
        n += u->addresses.size();
        EXPECT_EQ(u->addresses[0]->user.get(), u);
    }
    EXPECT_EQ(n, 2400u);
    EXPECT_EQ(sql.count("SELECT"), 0u);  // everything was loaded
    // Small sets: exactly 2 SELECTs.
    sa::Session s2(engine);
    sql.clear();
    auto few = s2.query<User>().filter(users.c["id"] <= 3).options(sa::selectinload(&User::addresses)).all();
    EXPECT_EQ(few.size(), 3u);
    EXPECT_EQ(sql.count("SELECT"), 2u);
    // A many-to-one the same way.
    sql.clear();
    auto addrs = s2.query<Address>().filter(addresses.c["id"] <= 10).options(sa::selectinload(&Address::user)).all();
    EXPECT_LE(sql.count("SELECT"), 2u);
    for (const auto& a : addrs) EXPECT_TRUE(a->user.get());
}

TEST_F(Relationships, RaiseloadAndNoload) {
    {
        sa::Session s(engine);
        auto u = std::make_shared<User>(User{.name = "jack"});
        u->addresses = {addr("a@x")};
        s.add(u);
        s.commit();
    }
    sa::Session s(engine);
    auto u = s.query<User>().options(sa::raiseload(&User::addresses)).one();
    EXPECT_THROW(u->addresses.size(), sa::InvalidRequestError);
    sa::Session s2(engine);
    auto v = s2.query<User>().options(sa::noload(&User::addresses)).one();
    sql.clear();
    EXPECT_EQ(v->addresses.size(), 0u);
    EXPECT_EQ(sql.count("SELECT"), 0u);
    EXPECT_THROW(s2.query<User>().options(sa::selectinload(&Address::user)).all(), sa::ArgumentError);
}

// ---- classical mapping, without delete-orphan ------------------------------------------------

namespace {
struct Parent;
struct Child {
    std::int64_t id = 0;
    std::optional<std::int64_t> parent_id;
    std::string name;
    sa::Ref<Parent> parent;
};
struct Parent {
    std::int64_t id = 0;
    std::string name;
    sa::Collection<Child> children;
};
}  // namespace

class ClassicalRelationships : public ::testing::Test {
protected:
    sa::MetaData m;
    sa::Table& parents = m.table("parents", sa::Column("id", sa::Integer(), sa::primary_key()), sa::Column("name", sa::String()));
    sa::Table& children = m.table("children", sa::Column("id", sa::Integer(), sa::primary_key()),
                                  sa::Column("parent_id", sa::Integer(), sa::ForeignKey("parents.id", {.ondelete = "CASCADE"})),
                                  sa::Column("name", sa::String()));
    sa::Registry registry;
    std::shared_ptr<sa::Engine> engine = testdb::engine({.foreign_keys = true});
    void map(sa::LoaderOption* = nullptr, bool passive = false) {
        auto pb = registry.map_imperatively<Parent>(parents).column("id", &Parent::id).column("name", &Parent::name);
        if (passive)
            pb.relationship("children", &Parent::children, sa::back_populates("parent"), sa::cascade("save-update"),
                            sa::passive_deletes());
        else
            pb.relationship("children", &Parent::children, sa::back_populates("parent"));
        registry.map_imperatively<Child>(children)
            .column("id", &Child::id).column("parent_id", &Child::parent_id).column("name", &Child::name)
            .relationship("parent", &Child::parent, sa::back_populates("children"));
        m.create_all(*engine);
    }
    std::int64_t count(const std::string& where) {
        auto c = engine->connect();
        return c.execute(sa::text("SELECT count(*) FROM children WHERE " + where)).scalar<std::int64_t>();
    }
};

TEST_F(ClassicalRelationships, RemovedChildKeepsItsRowWithANullForeignKey) {
    map();
    sa::Session s(engine);
    auto p = std::make_shared<Parent>(Parent{.name = "p"});
    auto c1 = std::make_shared<Child>(Child{.name = "c1"}), c2 = std::make_shared<Child>(Child{.name = "c2"});
    p->children = {c1, c2};
    s.add(p);
    s.commit();
    p->children.remove(c1);
    EXPECT_FALSE(c1->parent.get());  // back_populates: the other side at once
    s.commit();
    EXPECT_EQ(count("parent_id IS NULL"), 1);
    EXPECT_EQ(count("1=1"), 2);
    // Deleting the parent without a delete cascade nulls its children's foreign keys.
    s.delete_(p);
    s.commit();
    EXPECT_EQ(count("1=1"), 2);
    EXPECT_EQ(count("parent_id IS NULL"), 2);
}

TEST_F(ClassicalRelationships, MovingAChildBetweenParents) {
    map();
    sa::Session s(engine);
    auto a = std::make_shared<Parent>(Parent{.name = "a"}), b = std::make_shared<Parent>(Parent{.name = "b"});
    auto c = std::make_shared<Child>(Child{.name = "c"});
    a->children.push_back(c);
    s.add_all({a, b});
    s.commit();
    c->parent = b;  // many-to-one side: leaves a's collection, joins b's
    EXPECT_TRUE(b->children.contains(c));
    s.commit();
    EXPECT_EQ(c->parent_id, b->id);
    EXPECT_EQ(count("parent_id = " + std::to_string(b->id)), 1);
}

TEST_F(ClassicalRelationships, PassiveDeletesLeavesItToTheDatabase) {
    map(nullptr, true);
    sa::Session s(engine);
    auto p = std::make_shared<Parent>(Parent{.name = "p"});
    p->children = {std::make_shared<Child>(Child{.name = "c1"})};
    s.add(p);
    s.commit();
    s.expunge_all();
    auto again = s.get<Parent>(p->id);
    s.delete_(again);
    s.commit();  // no SELECT of the children; ON DELETE CASCADE removes them
    EXPECT_EQ(count("1=1"), 0);
}

// ---- adjacency lists, dirty collections, rollback --------------------------------------------

TEST(AdjacencyList, ParentsAreInsertedBeforeChildrenLevelByLevel) {
    sa::DeclarativeBase Base;
    Base.declare<Node>("nodes", sa::mapped_column("id", &Node::id, sa::primary_key()),
                       sa::mapped_column("parent_id", &Node::parent_id, sa::ForeignKey("nodes.id")),
                       sa::mapped_column("name", &Node::name, sa::String(20)),
                       sa::relationship("parent", &Node::parent, sa::back_populates(&Node::children)),
                       sa::relationship("children", &Node::children, sa::back_populates(&Node::parent),
                                        sa::cascade("all, delete-orphan")));
    auto engine = testdb::engine({.foreign_keys = true});
    Base.metadata.create_all(*engine);
    auto mk = [](std::string n) { return std::make_shared<Node>(Node{.name = std::move(n)}); };
    sa::Session s(engine);
    // Built leaves first, so insertion order alone would be wrong.
    auto leaf1 = mk("leaf1"), leaf2 = mk("leaf2"), mid = mk("mid"), root = mk("root");
    s.add(leaf1);
    mid->children = {leaf1, leaf2};
    root->children = {mid};
    s.add(root);
    s.commit();
    EXPECT_EQ(leaf1->parent_id, mid->id);
    EXPECT_EQ(leaf2->parent_id, mid->id);
    EXPECT_EQ(mid->parent_id, root->id);
    EXPECT_EQ(root->parent_id, std::nullopt);
    sa::Session s2(engine);
    auto r = s2.query<Node>().filter(sa::attr(&Node::name) == "root").one();
    ASSERT_EQ(r->children.size(), 1u);
    EXPECT_EQ(r->children[0]->children.size(), 2u);
    EXPECT_EQ(r->children[0]->children[0]->parent.get(), r->children[0]);
    // A cycle among new rows is named.
    auto a = mk("a"), b = mk("b");
    a->children = {b};
    b->children = {a};
    s2.add(a);
    try {
        s2.flush();
        FAIL() << "expected CircularDependencyError";
    } catch (const sa::CircularDependencyError& e) {
        EXPECT_NE(std::string(e.what()).find("Circular dependency detected between rows <"), std::string::npos) << e.what();
    }
    s2.rollback();
    a->children.clear();  // the program's own cycle (a and b hold each other): break it
    b->children.clear();
}

TEST_F(Relationships, ACollectionChangeMakesItsOwnerDirty) {
    sa::Session s(engine);
    auto jack = std::make_shared<User>(User{.name = "jack"});
    s.add(jack);
    s.commit();
    EXPECT_FALSE(s.is_modified(jack));
    jack->addresses.push_back(addr("a@x"));
    EXPECT_TRUE(s.is_modified(jack));
    EXPECT_TRUE(s.dirty().contains(jack));
    s.commit();
    EXPECT_FALSE(s.is_modified(jack));
}

TEST_F(Relationships, RollbackRestoresCollections) {
    sa::Session s(engine);
    auto jack = std::make_shared<User>(User{.name = "jack"});
    jack->addresses = {addr("kept@x")};
    s.add(jack);
    s.commit();
    auto temp = addr("temp@x");
    jack->addresses.push_back(temp);
    s.flush();
    s.rollback();
    EXPECT_EQ(s.state_of(temp), sa::ObjectState::transient);
    ASSERT_EQ(jack->addresses.size(), 1u);  // reloaded: the rolled-back child is gone
    EXPECT_EQ(jack->addresses[0]->email_address, "kept@x");
}

// ---- many-to-many ------------------------------------------------------------------------------

TEST_F(ManyToMany, AssociationRowsAreBatchedAndWrittenOnce) {
    sa::Session s(engine);
    auto p1 = std::make_shared<Post>(Post{.title = "p1"}), p2 = std::make_shared<Post>(Post{.title = "p2"});
    auto cpp = std::make_shared<Keyword>(Keyword{.word = "cpp"}), orm = std::make_shared<Keyword>(Keyword{.word = "orm"});
    p1->keywords = {cpp, orm};
    p2->keywords = {cpp};
    s.add_all({p1, p2});
    EXPECT_TRUE(cpp->posts.contains(p1));  // back_populates on both collections
    s.commit();
    EXPECT_EQ(links(), 3);
    EXPECT_EQ(sql.count("INSERT INTO post_keywords"), 1u);  // one executemany for the three rows
    sql.clear();
    // A pair changed from both sides is written once.
    auto web = std::make_shared<Keyword>(Keyword{.word = "web"});
    p2->keywords.push_back(web);
    web->posts.push_back(p2);
    s.commit();
    EXPECT_EQ(links(), 4);
    // Removing deletes the association row only.
    sql.clear();
    p1->keywords.remove(cpp);
    s.commit();
    EXPECT_EQ(links(), 3);
    EXPECT_EQ(sql.count("DELETE FROM post_keywords"), 1u);
    EXPECT_EQ(sql.count("DELETE FROM keywords"), 0u);
    // Loading goes through the association table, in order.
    sa::Session s2(engine);
    auto again = s2.get<Post>(p2->id);
    sql.clear();
    ASSERT_EQ(again->keywords.size(), 2u);
    EXPECT_EQ(again->keywords[0]->word, "cpp");
    EXPECT_EQ(again->keywords[1]->word, "web");
    EXPECT_NE(sql.statements().back().find("JOIN post_keywords ON keywords.id = post_keywords.keyword_id"),
              std::string::npos) << sql.statements().back();
    // Deleting an object deletes its association rows first.
    s2.delete_(again);
    s2.commit();
    EXPECT_EQ(links(), 1);
}

TEST_F(Relationships, ExpungeAndRefreshExpireCascades) {
    sa::Session s(engine);
    auto jack = std::make_shared<User>(User{.name = "jack"});
    jack->addresses = {addr("a@x"), addr("b@x")};
    s.add(jack);
    s.commit();
    (void)jack->addresses.size();  // load them
    auto a0 = jack->addresses[0];
    a0->email_address = "changed";
    s.refresh(jack);                  // "all" includes refresh-expire: a0 is expired too,
    EXPECT_EQ(a0->email_address, "a@x");  // its unflushed change discarded
    ASSERT_EQ(jack->addresses.size(), 2u);  // loaded again (refresh expired the collection)
    s.expunge(jack);                  // "all" includes expunge: the loaded addresses leave too
    EXPECT_FALSE(s.contains(a0.get()));
    EXPECT_FALSE(s.contains(jack.get()));
}

TEST_F(ClassicalRelationships, ViewOnlyRelationshipsWriteNothing) {
    auto pb = registry.map_imperatively<Parent>(parents).column("id", &Parent::id).column("name", &Parent::name);
    pb.relationship("children", &Parent::children, sa::viewonly());
    registry.map_imperatively<Child>(children)
        .column("id", &Child::id).column("parent_id", &Child::parent_id).column("name", &Child::name);
    m.create_all(*engine);
    sa::Session s(engine);
    auto p = std::make_shared<Parent>(Parent{.name = "p"});
    s.add(p);
    s.commit();
    auto c = std::make_shared<Child>(Child{.parent_id = p->id, .name = "c"});
    s.add(c);
    s.commit();
    ASSERT_EQ(p->children.size(), 1u);  // it loads
    auto stray = std::make_shared<Child>(Child{.name = "stray"});
    p->children.push_back(stray);        // but writes nothing and cascades nothing
    EXPECT_FALSE(s.contains(stray.get()));
    s.commit();
    EXPECT_EQ(count("1=1"), 1);
}

TEST_F(ClassicalRelationships, AnExistingChildMovesUnderANewParent) {
    auto pb = registry.map_imperatively<Parent>(parents).column("id", &Parent::id).column("name", &Parent::name);
    pb.relationship("children", &Parent::children);  // one direction only
    registry.map_imperatively<Child>(children)
        .column("id", &Child::id).column("parent_id", &Child::parent_id).column("name", &Child::name);
    m.create_all(*engine);
    sa::Session s(engine);
    auto old_parent = std::make_shared<Parent>(Parent{.name = "old"});
    auto c = std::make_shared<Child>(Child{.name = "c"});
    old_parent->children = {c};
    s.add(old_parent);
    s.commit();
    auto fresh = std::make_shared<Parent>(Parent{.name = "new"});
    fresh->children.push_back(c);  // an existing row under a parent that is not one yet
    s.add(fresh);
    s.commit();
    EXPECT_EQ(c->parent_id, fresh->id);
    EXPECT_EQ(count("parent_id = " + std::to_string(fresh->id)), 1);
}

// ---- smaller rules -------------------------------------------------------------------------------

TEST_F(Relationships, SettingARefToNullNullsTheForeignKey) {
    sa::Session s(engine);
    auto jack = std::make_shared<User>(User{.name = "jack"});
    jack->addresses = {addr("a@x")};
    s.add(jack);
    s.commit();
    auto a = s.query<Address>().one();
    a->user = nullptr;  // back_populates takes it out of jack's collection: delete-orphan
    EXPECT_FALSE(jack->addresses.contains(a));
    s.commit();
    EXPECT_EQ(rows("addresses"), 0);
}

TEST_F(ClassicalRelationships, SettingARefToNullWithoutACollection) {
    registry.map_imperatively<Parent>(parents).column("id", &Parent::id).column("name", &Parent::name);
    registry.map_imperatively<Child>(children)
        .column("id", &Child::id).column("parent_id", &Child::parent_id).column("name", &Child::name)
        .relationship("parent", &Child::parent);
    m.create_all(*engine);
    sa::Session s(engine);
    auto p = std::make_shared<Parent>(Parent{.name = "p"});
    auto c = std::make_shared<Child>(Child{.name = "c"});
    c->parent = p;  // save-update cascade along the many-to-one too
    s.add(c);
    s.commit();
    EXPECT_EQ(c->parent_id, p->id);
    c->parent = nullptr;
    s.commit();
    EXPECT_EQ(count("parent_id IS NULL"), 1);
}

TEST_F(Relationships, CollectionsHoldAnObjectOnce) {
    auto jack = std::make_shared<User>(User{.name = "jack"});
    auto a = addr("a@x");
    jack->addresses.push_back(a);
    jack->addresses.push_back(a);
    jack->addresses = {a, a};
    EXPECT_EQ(jack->addresses.size(), 1u);
    EXPECT_THROW(jack->addresses.push_back(nullptr), sa::ArgumentError);
    sa::Ref<User> empty;
    EXPECT_THROW((void)empty->name, sa::InvalidRequestError);
    EXPECT_FALSE(empty);
}

TEST_F(Relationships, CascadeWords) {
    auto all = sa::Cascade::parse("all");
    EXPECT_TRUE(all.save_update && all.merge && all.expunge && all.refresh_expire && all.delete_);
    EXPECT_FALSE(all.delete_orphan);
    auto d = sa::Cascade::parse("save-update, merge");
    EXPECT_TRUE(d.save_update && d.merge);
    EXPECT_FALSE(d.delete_);
    EXPECT_TRUE(sa::Cascade::parse(" all , delete-orphan ").delete_orphan);
}

namespace {
struct Orphan {
    std::int64_t id = 0;
    sa::Collection<User> users;  // no foreign key links orphans and users
};
struct Ghost {  // never mapped
    std::int64_t id = 0;
};
struct Lonely {
    std::int64_t id = 0;
    sa::Ref<Ghost> nothing;
};
}  // namespace

TEST(RelationshipConfiguration, ErrorsNameTheRelationshipAndTheProblem) {
    sa::DeclarativeBase Base;
    Base.declare<User>("users", sa::mapped_column("id", &User::id, sa::primary_key()),
                       sa::mapped_column("name", &User::name, sa::String(50)),
                       sa::mapped_column("fullname", &User::fullname, sa::String(50)));
    Base.declare<Orphan>("orphans", sa::mapped_column("id", &Orphan::id, sa::primary_key()),
                         sa::relationship("users", &Orphan::users));
    try {
        (void)Base.registry.mapper_of<Orphan>().relationships();
        FAIL() << "expected ArgumentError";
    } catch (const sa::ArgumentError& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("relationship"), std::string::npos) << msg;
        EXPECT_NE(msg.find("users"), std::string::npos) << msg;
        EXPECT_NE(msg.find("no foreign keys"), std::string::npos) << msg;
    }
    sa::DeclarativeBase B2;
    B2.declare<Lonely>("lonely", sa::mapped_column("id", &Lonely::id, sa::primary_key()),
                       sa::relationship("nothing", &Lonely::nothing));
    EXPECT_THROW((void)B2.registry.mapper_of<Lonely>().relationships(), sa::UnmappedClassError);
    EXPECT_THROW(sa::DeclarativeBase().declare<Lonely>("l2", sa::mapped_column("id", &Lonely::id, sa::primary_key()),
                                                        sa::relationship("nothing", &Lonely::nothing,
                                                                         sa::lazy(sa::Lazy::joined)),
                                                        sa::mapped_column("x", &Lonely::id)),
                 sa::ArgumentError);
}

TEST_F(Relationships, LazyRaiseAsTheRelationshipDefault) {
    sa::Session s(engine);
    auto jack = std::make_shared<User>(User{.name = "jack"});
    jack->addresses = {addr("a@x")};
    s.add(jack);
    s.commit();
    sa::Session s2(engine);
    auto u = s2.query<User>().options(sa::raiseload(&User::addresses)).one();
    try {
        (void)u->addresses.size();
        FAIL() << "expected InvalidRequestError";
    } catch (const sa::InvalidRequestError& e) {
        EXPECT_NE(std::string(e.what()).find("lazy='raise'"), std::string::npos) << e.what();
    }
    // A query option of another class's relationship is refused.
    EXPECT_THROW(s2.query<Address>().options(sa::selectinload(&User::addresses)).all(), sa::ArgumentError);
}

TEST_F(Relationships, SelectinloadWithNothingToLoad) {
    sa::Session s(engine);
    s.add(std::make_shared<User>(User{.name = "alone"}));
    s.commit();
    sa::Session s2(engine);
    sql.clear();
    auto all = s2.query<User>().options(sa::selectinload(&User::addresses)).all();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0]->addresses.size(), 0u);
    EXPECT_EQ(sql.count("SELECT"), 2u);
    auto none = s2.query<User>().filter(users.c["id"] < 0).options(sa::selectinload(&User::addresses)).all();
    EXPECT_TRUE(none.empty());
}

// ---- post_update: rows that point at each other ------------------------------------------------

namespace {
struct Entry;
struct Widget {
    std::int64_t widget_id = 0;
    std::optional<std::int64_t> favorite_entry_id;
    std::string name;
    sa::Collection<Entry> entries;
    sa::Ref<Entry> favorite_entry;
};
struct Entry {
    std::int64_t entry_id = 0;
    std::optional<std::int64_t> widget_id;
    std::string name;
};
}  // namespace

// SQLAlchemy's post_update example (relationship_persistence.html): a widget's entries, and its
// favorite entry, which is one of them.
class PostUpdate : public ::testing::Test {
protected:
    SqlLog sql;
    sa::DeclarativeBase Base;
    std::shared_ptr<sa::Engine> engine = testdb::engine({.echo = true, .foreign_keys = true});
    void declare(bool post_update) {
        Base.declare<Entry>("entry", sa::mapped_column("entry_id", &Entry::entry_id, sa::primary_key()),
                            sa::mapped_column("widget_id", &Entry::widget_id, sa::ForeignKey("widget.widget_id")),
                            sa::mapped_column("name", &Entry::name, sa::String(50)));
        auto favorite = post_update ? sa::relationship("favorite_entry", &Widget::favorite_entry, sa::post_update())
                                    : sa::relationship("favorite_entry", &Widget::favorite_entry);
        Base.declare<Widget>("widget", sa::mapped_column("widget_id", &Widget::widget_id, sa::primary_key()),
                             sa::mapped_column("favorite_entry_id", &Widget::favorite_entry_id,
                                               sa::ForeignKey("entry.entry_id", {.name = "fk_favorite_entry", .use_alter = true})),
                             sa::mapped_column("name", &Widget::name, sa::String(50)),
                             sa::relationship("entries", &Widget::entries), favorite);
        Base.metadata.create_all(*engine);
        sql.clear();
    }
    // A widget whose favorite is its one entry, added to `s`.
    std::pair<std::shared_ptr<Widget>, std::shared_ptr<Entry>> widget_with_favorite(sa::Session& s,
                                                                                  std::string name = "w") {
        auto w = std::make_shared<Widget>(Widget{.name = std::move(name)});
        auto e = std::make_shared<Entry>(Entry{.name = "e1"});
        w->favorite_entry = e;
        w->entries = {e};
        s.add(w);
        return {w, e};
    }
    std::vector<std::string> writes() {
        std::vector<std::string> out;
        for (const auto& st : sql.statements())
            if (st.rfind("INSERT", 0) == 0 || st.rfind("UPDATE", 0) == 0 || st.rfind("DELETE", 0) == 0) out.push_back(st);
        return out;
    }
};

TEST_F(PostUpdate, InsertInsertUpdateAsSqlAlchemyEmits) {
    declare(true);
    sa::Session s(engine);
    auto [w1, e1] = widget_with_favorite(s, "somewidget");
    s.commit();
    auto w = writes();
    ASSERT_EQ(w.size(), 3u);
    EXPECT_EQ(w[0], "INSERT INTO widget (favorite_entry_id, name) VALUES (?, ?)");
    EXPECT_EQ(w[1], "INSERT INTO entry (widget_id, name) VALUES (?, ?)");
    EXPECT_EQ(w[2], "UPDATE widget SET favorite_entry_id=? WHERE widget.widget_id = ?");
    EXPECT_EQ(w1->favorite_entry_id, e1->entry_id);
    EXPECT_EQ(e1->widget_id, w1->widget_id);
    auto c = engine->connect();
    EXPECT_EQ(c.execute(sa::text("SELECT favorite_entry_id FROM widget")).scalar<std::int64_t>(), e1->entry_id);
    // Nothing left to write: the snapshot holds the updated key.
    sql.clear();
    s.flush();
    EXPECT_TRUE(writes().empty());
}

TEST_F(PostUpdate, ChangingTheReferenceIsOneUpdateAfterTheInsert) {
    declare(true);
    sa::Session s(engine);
    auto [w1, e1] = widget_with_favorite(s);
    s.commit();
    sql.clear();
    auto e2 = std::make_shared<Entry>(Entry{.name = "e2"});
    w1->entries.push_back(e2);
    w1->favorite_entry = e2;
    s.commit();
    auto w = writes();
    ASSERT_EQ(w.size(), 2u);
    EXPECT_EQ(w[0], "INSERT INTO entry (widget_id, name) VALUES (?, ?)");
    EXPECT_EQ(w[1], "UPDATE widget SET favorite_entry_id=? WHERE widget.widget_id = ?");
    EXPECT_EQ(w1->favorite_entry_id, e2->entry_id);
}

TEST_F(PostUpdate, DeletingBothRowsNullsTheReferenceFirst) {
    declare(true);
    sa::Session s(engine);
    auto [w1, e1] = widget_with_favorite(s);
    s.commit();
    sql.clear();
    s.delete_(w1);
    s.delete_(e1);
    s.commit();  // foreign keys are enforced: the order matters
    auto w = writes();
    ASSERT_EQ(w.size(), 3u);
    EXPECT_EQ(w[0], "UPDATE widget SET favorite_entry_id=? WHERE widget.widget_id = ?");
    EXPECT_EQ(w[1], "DELETE FROM entry WHERE entry.entry_id = ?");
    EXPECT_EQ(w[2], "DELETE FROM widget WHERE widget.widget_id = ?");
    auto c = engine->connect();
    EXPECT_EQ(c.execute(sa::text("SELECT count(*) FROM widget")).scalar<std::int64_t>(), 0);
}

TEST_F(PostUpdate, WithoutItTheCycleIsACircularDependencyError) {
    declare(false);
    sa::Session s(engine);
    auto [w1, e1] = widget_with_favorite(s);
    try {
        s.flush();
        FAIL() << "expected CircularDependencyError";
    } catch (const sa::CircularDependencyError& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("Circular dependency detected"), std::string::npos) << what;
        EXPECT_NE(what.find("sa::post_update()"), std::string::npos) << what;
    }
    EXPECT_TRUE(writes().empty());  // nothing was written
    s.rollback();
}

TEST_F(PostUpdate, AFailedFlushRestoresTheForeignKeys) {
    declare(true);
    sa::Session s(engine);
    auto [w1, e1] = widget_with_favorite(s);
    sa::listen<Entry>(Base.registry.mapper_of<Entry>(), sa::MapperEvent::after_insert,
                      [](Entry&) { throw std::runtime_error("listener failed"); });
    EXPECT_THROW(s.flush(), std::runtime_error);
    s.rollback();
    EXPECT_EQ(w1->favorite_entry_id, std::nullopt);
    EXPECT_EQ(w1->widget_id, 0);
    auto c = engine->connect();
    EXPECT_EQ(c.execute(sa::text("SELECT count(*) FROM widget")).scalar<std::int64_t>(), 0);
}

// ---- foreign_keys(): two foreign keys between the same tables -------------------------------

namespace {
struct Person;
struct Message {
    std::int64_t id = 0;
    std::string body;
    std::optional<std::int64_t> sender_id, recipient_id;
    sa::Ref<Person> sender, recipient;
};
struct Person {
    std::int64_t id = 0;
    std::string name;
    sa::Collection<Message> sent;
};
}  // namespace

TEST(RelationshipForeignKeys, TheChosenForeignKeyIsUsed) {
    SqlLog sql;
    sa::DeclarativeBase Base;
    Base.declare<Person>("people", sa::mapped_column("id", &Person::id, sa::primary_key()),
                         sa::mapped_column("name", &Person::name, sa::String(20)),
                         sa::relationship("sent", &Person::sent, sa::foreign_keys(&Message::sender_id),
                                          sa::back_populates(&Message::sender)));
    Base.declare<Message>("messages", sa::mapped_column("id", &Message::id, sa::primary_key()),
                          sa::mapped_column("body", &Message::body, sa::String(50)),
                          sa::mapped_column("sender_id", &Message::sender_id, sa::ForeignKey("people.id")),
                          sa::mapped_column("recipient_id", &Message::recipient_id, sa::ForeignKey("people.id")),
                          sa::relationship("sender", &Message::sender, sa::foreign_keys(&Message::sender_id),
                                           sa::back_populates(&Person::sent)),
                          sa::relationship("recipient", &Message::recipient, sa::foreign_keys(&Message::recipient_id)));
    auto engine = testdb::engine({.echo = true, .foreign_keys = true});
    Base.metadata.create_all(*engine);
    sa::Session s(engine);
    auto ann = std::make_shared<Person>(Person{.name = "ann"}), bob = std::make_shared<Person>(Person{.name = "bob"});
    auto m = std::make_shared<Message>(Message{.body = "hi"});
    m->sender = ann;
    m->recipient = bob;
    s.add(m);
    EXPECT_TRUE(ann->sent.contains(m));
    s.commit();
    EXPECT_EQ(m->sender_id, ann->id);
    EXPECT_EQ(m->recipient_id, bob->id);
    sql.clear();
    auto to_bob = s.query<Message>().filter(sa::attr(&Message::recipient) == bob).all();
    ASSERT_EQ(to_bob.size(), 1u);
    EXPECT_NE(sql.statements().back().find("WHERE messages.recipient_id = ?"), std::string::npos);
    sa::Session s2(engine);
    auto a2 = s2.get<Person>(ann->id);
    EXPECT_EQ(a2->sent.size(), 1u);
    EXPECT_NE(sql.statements().back().find("WHERE messages.sender_id = ?"), std::string::npos);
}

TEST(RelationshipForeignKeys, AmbiguityIsNamed) {
    sa::DeclarativeBase Base;
    Base.declare<Person>("people", sa::mapped_column("id", &Person::id, sa::primary_key()),
                         sa::mapped_column("name", &Person::name, sa::String(20)));
    Base.declare<Message>("messages", sa::mapped_column("id", &Message::id, sa::primary_key()),
                          sa::mapped_column("body", &Message::body, sa::String(50)),
                          sa::mapped_column("sender_id", &Message::sender_id, sa::ForeignKey("people.id")),
                          sa::mapped_column("recipient_id", &Message::recipient_id, sa::ForeignKey("people.id")),
                          sa::relationship("sender", &Message::sender));
    auto engine = testdb::engine();
    Base.metadata.create_all(*engine);
    sa::Session s(engine);
    try {
        s.add(std::make_shared<Message>());
        FAIL() << "expected ArgumentError";
    } catch (const sa::ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("sa::foreign_keys"), std::string::npos) << e.what();
    }
}

// ---- merge cascade -----------------------------------------------------------------------------

TEST_F(Relationships, MergeCascadesAlongTheCollection) {
    std::shared_ptr<User> jack;
    {
        sa::Session s(engine);
        jack = std::make_shared<User>(User{.name = "jack"});
        jack->addresses = {addr("a@x"), addr("b@x")};
        s.add(jack);
        s.commit();
        ASSERT_EQ(jack->addresses.size(), 2u);  // loaded while the session is open
    }
    // Detached: changed, and given one more address.
    jack->name = "jack2";
    jack->addresses[0]->email_address = "a2@x";
    jack->addresses.push_back(addr("c@x"));
    sa::Session s(engine);
    auto merged = s.merge(jack);
    EXPECT_NE(merged, jack);  // the session's own copy
    ASSERT_EQ(merged->addresses.size(), 3u);
    EXPECT_EQ(merged->addresses[0]->email_address, "a2@x");
    EXPECT_EQ(merged->addresses[2]->user.get(), merged);  // back_populates on the merged side
    EXPECT_EQ(s.state_of(merged->addresses[2]), sa::ObjectState::pending);
    s.commit();
    EXPECT_EQ(rows("users", "name = 'jack2'"), 1);
    EXPECT_EQ(rows("addresses", "email_address = 'a2@x'"), 1);
    EXPECT_EQ(rows("addresses", "user_id = " + std::to_string(merged->id)), 3);
}

TEST_F(Relationships, MergeOfANewGraphMakesCopiesPending) {
    auto jack = std::make_shared<User>(User{.name = "jack"});
    jack->addresses = {addr("a@x")};
    sa::Session s(engine);
    auto merged = s.merge(jack);
    EXPECT_EQ(s.new_objects().size(), 2u);
    EXPECT_FALSE(s.contains(jack.get()));
    EXPECT_EQ(jack->addresses[0]->user.get_no_load(), nullptr);  // the program's objects are untouched
    s.commit();
    EXPECT_EQ(rows("addresses", "user_id = " + std::to_string(merged->id)), 1);
    EXPECT_EQ(jack->id, 0);
}

TEST_F(Relationships, MergeLeavesUnloadedRelationshipsAlone) {
    std::shared_ptr<User> jack;
    {
        sa::Session s(engine);
        auto u = std::make_shared<User>(User{.name = "jack"});
        u->addresses = {addr("a@x")};
        s.add(u);
        s.commit();
        sa::Session s2(engine);
        jack = s2.get<User>(u->id);  // addresses never loaded
    }
    jack->name = "renamed";
    sa::Session s(engine);
    auto merged = s.merge(jack);  // no DetachedInstanceError: the collection is skipped
    s.commit();
    EXPECT_EQ(rows("users", "name = 'renamed'"), 1);
    EXPECT_EQ(rows("addresses"), 1);  // not orphaned
    EXPECT_EQ(merged->addresses.size(), 1u);
}
