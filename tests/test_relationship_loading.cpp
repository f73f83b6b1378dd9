// Loading relationships (API.md section 8): joinedload (one LEFT OUTER JOIN, parents
// de-duplicated), selectinload of many-to-many, loader options on nested paths, relationship
// joins, session.scalars of objects, and sa::WriteOnly collections. Each test checks the SQL
// emitted (statement counts and text) and the objects loaded.
#include "relationship_fixtures.hpp"

namespace {

// Three users with 2, 0 and 3 addresses.
void seed(const std::shared_ptr<sa::Engine>& engine) {
    sa::Session s(engine);
    auto jack = std::make_shared<User>(User{.name = "jack", .fullname = "Jack Bean"});
    jack->addresses = {addr("jack@google.com"), addr("j25@yahoo.com")};
    auto wendy = std::make_shared<User>(User{.name = "wendy", .fullname = "Wendy Williams"});
    auto ed = std::make_shared<User>(User{.name = "ed", .fullname = "Ed Jones"});
    ed->addresses = {addr("ed@a"), addr("ed@b"), addr("ed@c")};
    s.add_all({jack, wendy, ed});
    s.commit();
}

}  // namespace

TEST_F(Relationships, JoinedloadManyToOneIsOneSelectWithALeftOuterJoin) {
    seed(engine);
    sa::Session s(engine);
    sql.clear();
    auto all = s.query<Address>().options(sa::joinedload(&Address::user)).all();
    ASSERT_EQ(sql.count("SELECT"), 1u);
    EXPECT_EQ(sql.statements()[0],
              "SELECT addresses.id, addresses.email_address, addresses.user_id, users_1.id AS id_1, users_1.name, "
              "users_1.fullname \nFROM addresses LEFT OUTER JOIN users AS users_1 ON users_1.id = addresses.user_id");
    ASSERT_EQ(all.size(), 5u);
    sql.clear();
    EXPECT_EQ(all[0]->user->name, "jack");
    EXPECT_EQ(all[0]->user.get(), all[1]->user.get());  // one object per row of users
    EXPECT_EQ(all[4]->user->name, "ed");
    EXPECT_EQ(sql.count("SELECT"), 0u);
}

TEST_F(Relationships, JoinedloadCollectionDeDuplicatesParents) {
    seed(engine);
    sa::Session s(engine);
    sql.clear();
    auto all = s.query<User>().options(sa::joinedload(&User::addresses)).order_by(users.c["id"]).all();
    ASSERT_EQ(sql.count("SELECT"), 1u);
    const std::string q = sql.statements()[0];
    EXPECT_NE(q.find("FROM users LEFT OUTER JOIN addresses AS addresses_1 ON users.id = addresses_1.user_id "
                     "ORDER BY users.id, addresses_1.id"),
              std::string::npos)
        << q;
    ASSERT_EQ(all.size(), 3u);  // 6 rows, 3 users
    EXPECT_EQ(all[0]->name, "jack");
    EXPECT_EQ(all[1]->name, "wendy");
    sql.clear();
    ASSERT_EQ(all[0]->addresses.size(), 2u);
    EXPECT_EQ(all[0]->addresses[1]->email_address, "j25@yahoo.com");
    EXPECT_EQ(all[1]->addresses.size(), 0u);  // the NULL side of the outer join: loaded, empty
    ASSERT_EQ(all[2]->addresses.size(), 3u);
    EXPECT_EQ(all[2]->addresses[2]->user.get(), all[2]);  // back_populates of the loaded children
    EXPECT_EQ(sql.count("SELECT"), 0u);
}

TEST_F(Relationships, JoinedloadWithACriterionAndOne) {
    seed(engine);
    sa::Session s(engine);
    sql.clear();
    auto ed = s.query<User>().options(sa::joinedload(&User::addresses)).filter(users.c["name"] == "ed").one();
    EXPECT_EQ(sql.count("SELECT"), 1u);  // three rows, one parent: one() is satisfied
    EXPECT_NE(sql.statements()[0].find("WHERE users.name = ?"), std::string::npos);
    sql.clear();
    EXPECT_EQ(ed->addresses.size(), 3u);
    EXPECT_EQ(sql.count("SELECT"), 0u);
}

TEST_F(Relationships, OptionsSurviveFilterByCopiesAndMoves) {
    // A query's options live apart from its filter_by() terms (they are rare; a lookup's query
    // has none): a copy, a move and a filter_by() each keep them, and the query they came from
    // keeps its own.
    seed(engine);
    sa::Session s(engine);
    const auto loading = s.query<User>().options(sa::joinedload(&User::addresses));
    auto ed_q = loading.filter_by({{"name", "ed"}});
    auto copied = ed_q;
    auto moved = std::move(copied).filter_by({{"id", 3}});
    sql.clear();
    auto ed = moved.one();
    ASSERT_EQ(sql.count("SELECT"), 1u);
    EXPECT_NE(sql.statements()[0].find("LEFT OUTER JOIN addresses AS addresses_1"), std::string::npos)
        << sql.statements()[0];
    EXPECT_NE(sql.statements()[0].find("WHERE users.name = ? AND users.id = ?"), std::string::npos)
        << sql.statements()[0];
    sql.clear();
    EXPECT_EQ(ed->addresses.size(), 3u);  // loaded by the join
    EXPECT_EQ(sql.count("SELECT"), 0u);
    EXPECT_EQ(ed_q.one(), ed);
    EXPECT_EQ(loading.all().size(), 3u);  // no criteria of its own
    EXPECT_NE(sql.statements().back().find("LEFT OUTER JOIN"), std::string::npos);
}

TEST_F(Relationships, JoinedloadUnderALimitLoadsTheCollectionByIn) {
    seed(engine);
    sa::Session s(engine);
    sql.clear();
    // A LIMIT on the joined rows would cut the collection: the parents are limited, and the
    // collection comes with one IN query (a many-to-one stays in the join).
    auto first = s.query<User>().options(sa::joinedload(&User::addresses)).order_by(users.c["id"].desc()).first();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->name, "ed");
    EXPECT_EQ(sql.count("SELECT"), 2u);
    EXPECT_EQ(sql.statements()[0].find("LEFT OUTER JOIN"), std::string::npos);
    sql.clear();
    EXPECT_EQ(first->addresses.size(), 3u);
    EXPECT_EQ(sql.count("SELECT"), 0u);
    auto a = s.query<Address>().options(sa::joinedload(&Address::user)).first();
    EXPECT_NE(sql.statements().back().find("LEFT OUTER JOIN users AS users_1"), std::string::npos);
    EXPECT_NE(sql.statements().back().find("LIMIT ?"), std::string::npos);
    EXPECT_TRUE(a->user.get_no_load());
}

TEST_F(Relationships, JoinedloadKeepsWhatTheSessionAlreadyLoaded) {
    seed(engine);
    sa::Session s(engine);
    auto jack = s.query<User>().filter(users.c["name"] == "jack").one();
    ASSERT_EQ(jack->addresses.size(), 2u);
    auto extra = addr("new@x");
    {
        auto guard = s.no_autoflush();
        jack->addresses.push_back(extra);  // not flushed yet
        (void)s.query<User>().options(sa::joinedload(&User::addresses)).all();
        EXPECT_EQ(jack->addresses.size(), 3u);  // the loaded collection is not overwritten
        EXPECT_TRUE(jack->addresses.contains(extra));
    }
}

TEST(RelationshipLoading, JoinedAsTheRelationshipDefault) {
    struct Author;
    sa::DeclarativeBase Base;
    struct Book {
        std::int64_t id = 0;
        std::string title;
        std::optional<std::int64_t> author_id;
        sa::Ref<Author> author;
    };
    struct Author {
        std::int64_t id = 0;
        std::string name;
    };
    Base.declare<Author>("authors", sa::mapped_column("id", &Author::id, sa::primary_key()),
                         sa::mapped_column("name", &Author::name, sa::String(20)));
    Base.declare<Book>("books", sa::mapped_column("id", &Book::id, sa::primary_key()),
                       sa::mapped_column("title", &Book::title, sa::String(20)),
                       sa::mapped_column("author_id", &Book::author_id, sa::ForeignKey("authors.id")),
                       sa::relationship("author", &Book::author, sa::lazy(sa::Lazy::joined)));
    SqlLog sql;
    auto engine = testdb::engine({.echo = true});
    Base.metadata.create_all(*engine);
    {
        sa::Session s(engine);
        auto a = std::make_shared<Author>(Author{.name = "le guin"});
        s.add(a);
        s.add(std::make_shared<Book>(Book{.title = "earthsea", .author = a}));
        s.add(std::make_shared<Book>(Book{.title = "orphan"}));
        s.commit();
    }
    sql.clear();
    sa::Session s(engine);
    auto books = s.query<Book>().order_by(sa::attr(&Book::id)).all();
    ASSERT_EQ(sql.count("SELECT"), 1u);
    EXPECT_NE(sql.statements()[0].find("LEFT OUTER JOIN authors AS authors_1 ON authors_1.id = books.author_id"),
              std::string::npos);
    sql.clear();
    EXPECT_EQ(books[0]->author->name, "le guin");
    EXPECT_FALSE(books[1]->author.get());  // NULL foreign key: loaded as empty
    EXPECT_EQ(sql.count("SELECT"), 0u);
    // lazyload() overrides the default for one query.
    sa::Session s2(engine);
    sql.clear();
    (void)s2.query<Book>().options(sa::lazyload(&Book::author)).all();
    EXPECT_EQ(sql.statements()[0].find("JOIN"), std::string::npos);
}

TEST_F(Relationships, NestedOptionsLoadTwoLevels) {
    seed(engine);
    sa::Session s(engine);
    sql.clear();
    // Addresses with their users joined, and each user's whole collection by one IN query.
    auto all = s.query<Address>()
                   .filter(addresses.c["email_address"].like("%@google.com"))
                   .options(sa::joinedload(&Address::user).selectinload(&User::addresses))
                   .all();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(sql.count("SELECT"), 2u);
    EXPECT_NE(sql.statements()[1].find("WHERE addresses.user_id IN (?)"), std::string::npos) << sql.statements()[1];
    sql.clear();
    EXPECT_EQ(all[0]->user->addresses.size(), 2u);
    EXPECT_EQ(sql.count("SELECT"), 0u);
    // An option of the wrong class on the path is named.
    sa::Session s2(engine);
    EXPECT_THROW(s2.query<Address>().options(sa::joinedload(&Address::user).selectinload(&Address::user)).all(),
                 sa::ArgumentError);
}

TEST(AdjacencyList, NestedSelectinloadAndJoinedloadUseAnAlias) {
    sa::DeclarativeBase Base;
    Base.declare<Node>("nodes", sa::mapped_column("id", &Node::id, sa::primary_key()),
                       sa::mapped_column("parent_id", &Node::parent_id, sa::ForeignKey("nodes.id")),
                       sa::mapped_column("name", &Node::name, sa::String(20)),
                       sa::relationship("parent", &Node::parent, sa::back_populates(&Node::children)),
                       sa::relationship("children", &Node::children, sa::back_populates(&Node::parent),
                                        sa::order_by(&Node::id)));
    SqlLog sql;
    auto engine = testdb::engine({.echo = true});
    Base.metadata.create_all(*engine);
    auto mk = [](std::string n) { return std::make_shared<Node>(Node{.name = std::move(n)}); };
    {
        sa::Session s(engine);
        auto root = mk("root"), a = mk("a"), b = mk("b");
        a->children = {mk("a1"), mk("a2")};
        b->children = {mk("b1")};
        root->children = {a, b};
        s.add(root);
        s.commit();
    }
    sql.clear();
    {
        sa::Session s(engine);
        auto root = s.query<Node>()
                        .filter(sa::attr(&Node::parent_id) == nullptr)
                        .options(sa::selectinload(&Node::children).selectinload(&Node::children))
                        .one();
        EXPECT_EQ(sql.count("SELECT"), 3u);  // roots, their children, the grandchildren
        sql.clear();
        ASSERT_EQ(root->children.size(), 2u);
        EXPECT_EQ(root->children[0]->children.size(), 2u);
        EXPECT_EQ(root->children[1]->children[0]->name, "b1");
        EXPECT_EQ(root->children[1]->children[0]->parent.get(), root->children[1]);
        EXPECT_EQ(sql.count("SELECT"), 0u);
    }
    sa::Session s(engine);
    sql.clear();
    auto all = s.query<Node>().options(sa::joinedload(&Node::children)).all();
    ASSERT_EQ(sql.count("SELECT"), 1u);
    EXPECT_NE(sql.statements()[0].find("FROM nodes LEFT OUTER JOIN nodes AS nodes_1 ON nodes.id = nodes_1.parent_id"),
              std::string::npos)
        << sql.statements()[0];
    EXPECT_EQ(all.size(), 6u);
    sql.clear();
    for (const auto& n : all)
        if (n->name == "a") {
            EXPECT_EQ(n->children.size(), 2u);
        }
    EXPECT_EQ(sql.count("SELECT"), 0u);
}

TEST_F(Relationships, RelationshipJoinsAndOuterJoins) {
    seed(engine);
    sa::Session s(engine);
    sql.clear();
    auto with_none = s.query<User>()
                         .outerjoin(&User::addresses)
                         .filter(addresses.c["id"] == nullptr)
                         .all();
    ASSERT_EQ(with_none.size(), 1u);
    EXPECT_EQ(with_none[0]->name, "wendy");
    EXPECT_NE(sql.statements()[0].find("FROM users LEFT OUTER JOIN addresses ON users.id = addresses.user_id"),
              std::string::npos)
        << sql.statements()[0];
}

TEST_F(Relationships, ScalarsOfObjectsGoThroughTheIdentityMap) {
    seed(engine);
    sa::Session s(engine);
    auto jack = s.query<User>().filter(users.c["name"] == "jack").one();
    auto objs = s.scalars<std::shared_ptr<User>>(users.select().order_by(users.c["id"]));
    ASSERT_EQ(objs.size(), 3u);
    EXPECT_EQ(objs[0], jack);  // the same object
    EXPECT_EQ(objs[2]->name, "ed");
    EXPECT_THROW(s.scalars<std::shared_ptr<User>>(sa::select(users.c["id"])), sa::ArgumentError);
}

// ---- many-to-many loading ------------------------------------------------------------------

namespace {
void seed_posts(sa::Session& s) {
    auto cpp = std::make_shared<Keyword>(Keyword{.word = "cpp"}), orm = std::make_shared<Keyword>(Keyword{.word = "orm"}),
         sql = std::make_shared<Keyword>(Keyword{.word = "sql"});
    auto p1 = std::make_shared<Post>(Post{.title = "p1"}), p2 = std::make_shared<Post>(Post{.title = "p2"}),
         p3 = std::make_shared<Post>(Post{.title = "p3"});
    p1->keywords = {orm, cpp};
    p2->keywords = {sql};
    s.add_all({p1, p2, p3});
    s.commit();
}
}  // namespace

TEST_F(ManyToMany, SelectinloadGoesThroughTheAssociationTable) {
    {
        sa::Session s(engine);
        seed_posts(s);
    }
    sa::Session s(engine);
    sql.clear();
    auto posts = s.query<Post>().options(sa::selectinload(&Post::keywords)).order_by(sa::attr(&Post::id)).all();
    ASSERT_EQ(sql.count("SELECT"), 2u);
    EXPECT_NE(sql.statements()[1].find("FROM keywords JOIN post_keywords ON keywords.id = post_keywords.keyword_id \n"
                                       "WHERE post_keywords.post_id IN (?, ?, ?) ORDER BY keywords.word"),
              std::string::npos)
        << sql.statements()[1];
    sql.clear();
    ASSERT_EQ(posts[0]->keywords.size(), 2u);
    EXPECT_EQ(posts[0]->keywords[0]->word, "cpp");  // the relationship's order_by
    EXPECT_EQ(posts[1]->keywords.size(), 1u);
    EXPECT_EQ(posts[2]->keywords.size(), 0u);
    EXPECT_EQ(sql.count("SELECT"), 0u);
    // What was loaded is what the association table holds: removing one deletes one row.
    posts[0]->keywords.remove(posts[0]->keywords[0]);
    s.commit();
    EXPECT_EQ(links(), 2);
}

TEST_F(ManyToMany, JoinedloadIsOneSelectWithTwoOuterJoins) {
    {
        sa::Session s(engine);
        seed_posts(s);
    }
    sa::Session s(engine);
    sql.clear();
    auto posts = s.query<Post>().options(sa::joinedload(&Post::keywords)).order_by(sa::attr(&Post::id)).all();
    ASSERT_EQ(sql.count("SELECT"), 1u);
    EXPECT_NE(sql.statements()[0].find("FROM posts LEFT OUTER JOIN post_keywords AS post_keywords_1 ON posts.id = "
                                       "post_keywords_1.post_id LEFT OUTER JOIN keywords AS keywords_1 ON "
                                       "keywords_1.id = post_keywords_1.keyword_id"),
              std::string::npos)
        << sql.statements()[0];
    ASSERT_EQ(posts.size(), 3u);
    EXPECT_EQ(posts[0]->keywords.size(), 2u);
    EXPECT_EQ(posts[2]->keywords.size(), 0u);
    // Adding one writes one association row (the loaded rows are known).
    auto web = std::make_shared<Keyword>(Keyword{.word = "web"});
    posts[2]->keywords.push_back(web);
    sql.clear();
    s.commit();
    EXPECT_EQ(links(), 4);
    EXPECT_EQ(sql.count("DELETE"), 0u);
}

TEST_F(ManyToMany, JoinAndAnyGoThroughTheAssociationTable) {
    {
        sa::Session s(engine);
        seed_posts(s);
    }
    sa::Session s(engine);
    sql.clear();
    auto with_cpp = s.query<Post>().join(&Post::keywords).filter(keywords.c["word"] == "cpp").all();
    ASSERT_EQ(with_cpp.size(), 1u);
    EXPECT_EQ(with_cpp[0]->title, "p1");
    EXPECT_NE(sql.statements()[0].find("FROM posts JOIN post_keywords ON posts.id = post_keywords.post_id JOIN "
                                       "keywords ON keywords.id = post_keywords.keyword_id"),
              std::string::npos)
        << sql.statements()[0];
    auto tagged = s.query<Post>().filter(sa::attr(&Post::keywords).any(keywords.c["word"] == "sql")).all();
    ASSERT_EQ(tagged.size(), 1u);
    EXPECT_EQ(tagged[0]->title, "p2");
    auto untagged = s.query<Post>().filter(!sa::attr(&Post::keywords).any()).all();
    ASSERT_EQ(untagged.size(), 1u);
    EXPECT_EQ(untagged[0]->title, "p3");
}

// ---- WriteOnly -------------------------------------------------------------------------------

namespace {
struct Log;
struct Account {
    std::int64_t id = 0;
    std::string name;
    sa::WriteOnly<Log> logs;
};
struct Log {
    std::int64_t id = 0;
    std::optional<std::int64_t> account_id;
    std::string line;
    sa::Ref<Account> account;
};
std::shared_ptr<Log> log_line(std::string l) { return std::make_shared<Log>(Log{.line = std::move(l)}); }
}  // namespace

class WriteOnlyCollections : public ::testing::Test {
protected:
    sa::DeclarativeBase Base;
    std::shared_ptr<sa::Engine> engine = testdb::engine({.echo = true, .foreign_keys = true});
    SqlLog sql;
    void declare(const char* cascade, bool passive = false) {
        auto logs = passive ? sa::relationship("logs", &Account::logs, sa::back_populates(&Log::account),
                                               sa::cascade(cascade), sa::passive_deletes(), sa::order_by(&Log::id))
                            : sa::relationship("logs", &Account::logs, sa::back_populates(&Log::account),
                                               sa::cascade(cascade), sa::order_by(&Log::id));
        Base.declare<Account>("accounts", sa::mapped_column("id", &Account::id, sa::primary_key()),
                              sa::mapped_column("name", &Account::name, sa::String(20)), logs);
        Base.declare<Log>("logs", sa::mapped_column("id", &Log::id, sa::primary_key()),
                          sa::mapped_column("account_id", &Log::account_id,
                                            sa::ForeignKey("accounts.id", {.ondelete = "CASCADE"})),
                          sa::mapped_column("line", &Log::line, sa::String(50)),
                          sa::relationship("account", &Log::account, sa::back_populates(&Account::logs)));
        Base.metadata.create_all(*engine);
        sql.clear();
    }
    std::int64_t rows(const std::string& where = "1=1") {
        auto c = engine->connect();
        return c.execute(sa::text("SELECT count(*) FROM logs WHERE " + where)).scalar<std::int64_t>();
    }
};

TEST_F(WriteOnlyCollections, AddIsQueuedAndWrittenWithoutLoading) {
    declare("save-update");
    sa::Session s(engine);
    auto acct = std::make_shared<Account>(Account{.name = "main"});
    acct->logs.add(log_line("opened"));
    s.add(acct);  // save-update cascade through the queued additions
    EXPECT_EQ(s.new_objects().size(), 2u);
    s.commit();
    EXPECT_EQ(rows("account_id = " + std::to_string(acct->id)), 1);
    EXPECT_TRUE(acct->logs.pending().empty());  // the queue is rows now
    sql.clear();
    for (int i = 0; i < 100; ++i) acct->logs.add(log_line("line " + std::to_string(i)));
    EXPECT_EQ(sql.count("SELECT"), 0u) << sql.text();  // never loads, however large
    s.commit();
    EXPECT_EQ(sql.count("SELECT"), 0u) << sql.text();
    EXPECT_EQ(rows("account_id = " + std::to_string(acct->id)), 101);
}

TEST_F(WriteOnlyCollections, SelectIsAStatementToRefine) {
    declare("save-update");
    sa::Session s(engine);
    auto acct = std::make_shared<Account>(Account{.name = "main"});
    s.add(acct);
    for (int i = 0; i < 10; ++i) acct->logs.add(log_line("l" + std::to_string(i)));
    // select() of a pending owner flushes it first (its key is needed).
    sa::Select stmt = acct->logs.select();
    EXPECT_EQ(s.scalar<std::int64_t>(sa::text("SELECT count(*) FROM logs")), 10);  // flushed, in the session's transaction
    sql.clear();
    auto last3 = s.scalars<std::shared_ptr<Log>>(stmt.where(sa::attr(&Log::id) > 7).limit(3));
    ASSERT_EQ(sql.count("SELECT"), 1u);
    EXPECT_NE(sql.statements()[0].find("WHERE logs.account_id = ? AND logs.id > ? ORDER BY logs.id\n LIMIT ?"),
              std::string::npos)
        << sql.text();
    ASSERT_EQ(last3.size(), 3u);
    EXPECT_EQ(last3[0]->line, "l7");
    EXPECT_EQ(last3[0]->account.get(), acct);  // the identity map
    // Outside a session there is nothing to select from.
    Account loose;
    EXPECT_THROW(loose.logs.select(), sa::InvalidRequestError);
}

TEST_F(WriteOnlyCollections, RemoveNullsTheForeignKeyOrDeletesTheOrphan) {
    declare("save-update");
    {
        sa::Session s(engine);
        auto acct = std::make_shared<Account>(Account{.name = "main"});
        acct->logs.add_all({log_line("a"), log_line("b")});
        s.add(acct);
        s.commit();
        auto first = s.scalars<std::shared_ptr<Log>>(acct->logs.select()).front();
        acct->logs.remove(first);
        s.commit();
        EXPECT_EQ(rows("account_id IS NULL"), 1);
        EXPECT_EQ(rows(), 2);
    }
}

TEST_F(WriteOnlyCollections, DeleteOrphanAndDeleteCascadeReadTheRows) {
    declare("all, delete-orphan");
    sa::Session s(engine);
    auto acct = std::make_shared<Account>(Account{.name = "main"});
    acct->logs.add_all({log_line("a"), log_line("b"), log_line("c")});
    s.add(acct);
    s.commit();
    auto a = s.scalars<std::shared_ptr<Log>>(acct->logs.select()).front();
    acct->logs.remove(a);
    s.commit();
    EXPECT_EQ(rows(), 2) << sql.text();
    // Deleting the owner: the rows are read for the cascade (the collection is never loaded
    // into the member), then deleted before the owner.
    sql.clear();
    s.delete_(acct);
    s.commit();
    EXPECT_EQ(sql.count("DELETE FROM logs"), 2u);  // one prepared statement, run per row
    EXPECT_EQ(sql.count("SELECT"), 1u) << sql.text();
    EXPECT_LT(sql.text().find("DELETE FROM logs"), sql.text().find("DELETE FROM accounts"));
    EXPECT_EQ(rows(), 0);
}

TEST_F(WriteOnlyCollections, PassiveDeletesLeaveItToTheDatabase) {
    declare("all, delete-orphan", true);
    sa::Session s(engine);
    auto acct = std::make_shared<Account>(Account{.name = "main"});
    acct->logs.add_all({log_line("a"), log_line("b")});
    s.add(acct);
    s.commit();
    sql.clear();
    s.delete_(acct);
    s.commit();
    EXPECT_EQ(sql.count("SELECT"), 0u);
    EXPECT_EQ(sql.count("DELETE FROM logs"), 0u);
    EXPECT_EQ(rows(), 0);  // ON DELETE CASCADE
}

TEST(WriteOnlyConfiguration, UnsupportedCombinationsAreNamed) {
    sa::DeclarativeBase Base;
    Base.declare<Account>("accounts", sa::mapped_column("id", &Account::id, sa::primary_key()),
                          sa::mapped_column("name", &Account::name, sa::String(20)),
                          sa::relationship("logs", &Account::logs, sa::lazy(sa::Lazy::selectin)));
    Base.declare<Log>("logs", sa::mapped_column("id", &Log::id, sa::primary_key()),
                      sa::mapped_column("account_id", &Log::account_id, sa::ForeignKey("accounts.id")),
                      sa::mapped_column("line", &Log::line, sa::String(50)));
    auto engine = testdb::engine();
    Base.metadata.create_all(*engine);
    sa::Session s(engine);
    try {
        s.add(std::make_shared<Account>());
        FAIL() << "expected ArgumentError";
    } catch (const sa::ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("logs: a WriteOnly collection never loads"), std::string::npos)
            << e.what();
    }
}

TEST_F(WriteOnlyCollections, TheChildSideIsFilledInAndCanMoveTheChild) {
    declare("save-update");
    sa::Session s(engine);
    auto a = std::make_shared<Account>(Account{.name = "a"}), b = std::make_shared<Account>(Account{.name = "b"});
    s.add_all({a, b});
    auto l = log_line("x");
    a->logs.add(l);
    EXPECT_EQ(l->account.get(), a);  // back_populates, no SQL
    s.commit();
    EXPECT_EQ(l->account_id, a->id);
    l->account = b;  // from the many-to-one side: the write-only side is not loaded for it
    s.commit();
    EXPECT_EQ(rows("account_id = " + std::to_string(b->id)), 1);
    EXPECT_EQ(rows("account_id = " + std::to_string(a->id)), 0);
}

TEST_F(Relationships, RefKeyNeverLoads) {
    seed(engine);
    sa::Session s(engine);
    auto a = s.query<Address>().filter(addresses.c["email_address"] == "ed@a").one();
    sql.clear();
    auto k = a->user.key();  // not loaded: the foreign key, without SQL
    ASSERT_EQ(k.size(), 1u);
    EXPECT_EQ(k[0], sa::Value(*a->user_id));
    EXPECT_EQ(sql.count("SELECT"), 0u);
    auto u = a->user.get();
    EXPECT_EQ(a->user.key(), std::vector<sa::Value>{sa::Value(u->id)});
    a->user = nullptr;
    EXPECT_TRUE(a->user.key().empty());
    auto fresh = std::make_shared<User>(User{.id = 42, .name = "n"});
    sa::Ref<User> plain(fresh);  // not in a session: the target's key
    EXPECT_EQ(plain.key(), std::vector<sa::Value>{sa::Value(42)});
    s.rollback();
}
