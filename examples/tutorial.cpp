// The seed tutorial (after SQLAlchemy's ORM tutorial), run with echo on so every statement and
// its parameters are printed the way SQLAlchemy prints them.
#include <athanor/athanor.hpp>

#include <iostream>
#include <nlohmann/json.hpp>

namespace sa = athanor;

struct User {
    std::int64_t id = 0;
    std::string name, fullname, password;
};
struct Customer {
    std::int64_t id = 0;
    std::string name, description;
};
// The tutorial's User/Address chapter: a relationship in both directions.
struct Mail;
struct Person {
    std::int64_t id = 0;
    std::string name, fullname;
    sa::Collection<Mail> addresses;
};
struct Mail {
    std::int64_t id = 0;
    std::string email_address;
    std::optional<std::int64_t> user_id;
    sa::Ref<Person> user;
};

static void step(const char* title) { std::cout << "\n==== " << title << " ====\n" << std::flush; }

int main() {
    try {
        step("1. Connecting");
        auto engine = sa::create_engine("sqlite:///:memory:", {.echo = true});
        sa::Connection conn = engine->connect();
        auto one = conn.execute(sa::text("SELECT 1")).scalar<std::int64_t>();
        std::cout << "SELECT 1 -> " << one << "\n";

        step("2. Schema at run time");
        sa::MetaData metadata;
        sa::Table& users = metadata.table("users",
            sa::Column("id", sa::Integer(), sa::primary_key()),
            sa::Column("name", sa::String(50), sa::nullable(false), sa::unique()),
            sa::Column("fullname", sa::String(50)),
            sa::Column("password", sa::String(12)));
        sa::Table& addresses = metadata.table("addresses",
            sa::Column("id", sa::Integer(), sa::primary_key()),
            sa::Column("email", sa::String(100), sa::nullable(false), sa::index()),
            sa::Column("user_id", sa::Integer(), sa::ForeignKey("users.id", {.ondelete = "CASCADE"})));
        metadata.create_all(*engine);

        step("3. Inserting");
        conn.execute(users.insert(), {{"name", "ed"}, {"fullname", "Ed Jones"}, {"password", "edspassword"}});
        std::vector<sa::Params> more = {{{"name", "wendy"}, {"fullname", "Wendy Williams"}, {"password", "foobar"}},
                                        {{"name", "mary"}, {"fullname", "Mary Contrary"}, {"password", "xxg527"}},
                                        {{"name", "fred"}, {"fullname", "Fred Flintstone"}, {"password", "blah"}}};
        conn.execute(users.insert(), more);  // executemany: one prepared statement
        auto jack = conn.execute(users.insert().values({{"name", "jack"}, {"fullname", "Jack Bean"}}));
        std::int64_t jack_id = jack.inserted_primary_key().at(0).as_int();
        conn.execute(addresses.insert(), std::vector<sa::Params>{{{"email", "jack@google.com"}, {"user_id", jack_id}},
                                                                 {{"email", "j25@yahoo.com"}, {"user_id", jack_id}}});
        conn.commit();

        step("4. Selecting");
        auto stmt = sa::select(users.c["id"], users.c["name"])
                        .where(sa::and_(users.c["name"].like("%e%"), users.c["id"] > 0))
                        .order_by(users.c["id"].desc()).limit(10).offset(0);
        for (const sa::Row& row : conn.execute(stmt))
            std::cout << "  " << row.get<std::int64_t>("id") << " " << row.get<std::string>("name") << "\n";
        for (const sa::Row& row : conn.execute(stmt))  // the same statement again: compiled once
            (void)row;
        auto joined = sa::select(users.c["name"], addresses.c["email"]).join_from(users, addresses)
                          .where(addresses.c["email"].like("%@google.com"));
        for (const sa::Row& row : conn.execute(joined)) std::cout << "  " << row.repr() << "\n";
        auto counts = sa::select(users.c["name"], sa::func::count(addresses.c["id"]).label("n"))
                          .outerjoin(addresses).group_by(users.c["name"]).order_by(users.c["name"]);
        for (const sa::Row& row : conn.execute(counts)) std::cout << "  " << row.repr() << "\n";

        step("5. Updating and deleting");
        conn.execute(users.update().where(users.c["name"] == "ed").values({{"fullname", "Edward Jones"}}));
        conn.execute(users.delete_().where(users.c["name"].in_({"fred", "nobody"})));
        conn.commit();

        step("6. Transactions and savepoints");
        {
            sa::Transaction tx = conn.begin();
            conn.execute(users.insert(), {{"name", "temp"}});
            auto nested = conn.begin_nested();
            conn.execute(users.insert(), {{"name", "temp2"}});
            nested.rollback();  // only temp2 is undone
            tx.commit();
        }
        try {
            conn.execute(users.insert(), {{"name", "ed"}});
        } catch (const sa::IntegrityError& e) {
            std::cout << "IntegrityError (expected): " << e.orig() << "\n";
            conn.rollback();
        }
        auto n = conn.execute(sa::select(sa::func::count(users.c["id"]))).scalar<std::int64_t>();
        std::cout << "users now: " << n << "\n";

        step("7. Schemas as JSON, and reflection");
        nlohmann::json doc = metadata.to_json();
        sa::MetaData copy = sa::MetaData::from_json(doc);
        std::cout << "JSON round trip identical: " << std::boolalpha << (copy.to_json() == doc) << "\n";
        conn.close();
        sa::MetaData reflected;
        reflected.reflect(*engine);
        std::cout << "reflected tables:";
        for (const auto& [name, t] : reflected.tables()) std::cout << " " << name << "(" << t->columns().size() << " columns)";
        std::cout << "\n";

        step("8. Classical mapping with an explicit registry");
        sa::Registry registry;
        registry.map_imperatively<User>(users)
            .column("id", &User::id)
            .column("name", &User::name)
            .column("fullname", [](const User& u) { return u.fullname; },
                    [](User& u, std::string v) { u.fullname = std::move(v); })
            .column("password", &User::password);
        const sa::Mapper& um = registry.mapper_of<User>();
        auto conn2 = engine->connect();
        std::vector<sa::Value> row_values;
        auto rows = conn2.execute(sa::select(users.c["id"], users.c["name"], users.c["fullname"], users.c["password"])
                                      .where(sa::attr(&User::name) == "ed"));
        while (rows.fetch_into(row_values)) {
            auto ed = std::static_pointer_cast<User>(um.create());
            um.write(ed.get(), row_values);  // through the mapper's accessors
            std::cout << "User(id=" << ed->id << ", name='" << ed->name << "', fullname='" << ed->fullname << "')\n";
        }
        conn2.close();

        step("9. Declarative, built on the same registry API");
        sa::DeclarativeBase Base;
        Base.declare<Customer>("customer",
            sa::mapped_column("id", &Customer::id, sa::primary_key()),
            sa::mapped_column("name", &Customer::name, sa::String(255)),
            sa::mapped_column("description", &Customer::description, sa::String(255)));
        Base.metadata.create_all(*engine);
        std::cout << sa::select(sa::attr(&Customer::id)).where(sa::attr(&Customer::name) == "ed").to_string(engine->dialect())
                  << "\n";

        step("10. The Session: add, autoflush, identity map");
        sa::sessionmaker Session;
        Session.configure({.bind = engine});
        sa::Session session = Session();
        auto ed = session.query<User>().filter_by({{"name", "ed"}}).one();
        auto bob = std::make_shared<User>(User{0, "bob", "Bob Builder", "canwefixit"});
        session.add(bob);  // pending: nothing sent yet
        auto same = session.query<User>().filter_by({{"name", "bob"}}).first();  // autoflush: INSERT first
        std::cout << "same object: " << std::boolalpha << (same == bob) << ", generated id: " << bob->id << "\n";
        std::cout << "get() from the identity map, no SQL: " << (session.get<User>(ed->id) == ed) << "\n";

        step("11. Dirty tracking and commit");
        ed->password = "f8s7ccs";
        std::cout << "dirty: " << session.dirty().contains(ed) << "\n";
        session.add_all({std::make_shared<User>(User{0, "carol", "Carol C", "x"}),
                         std::make_shared<User>(User{0, "dave", "Dave D", "y"})});
        session.commit();  // UPDATE of the changed column only, INSERTs, COMMIT
        auto some = session.query<User>().filter(users.c["name"].in_({"ed", "carol"})).order_by(users.c["id"]).all();
        auto total = session.query<User>().count();
        std::cout << "query returned " << some.size() << " users; count() = " << total << "\n";

        step("12. Rollback");
        ed->fullname = "Someone Else";
        session.delete_(bob);
        session.flush();  // UPDATE and DELETE sent, not committed
        session.rollback();
        std::cout << "after rollback: ed.fullname = '" << ed->fullname << "', bob is "
                  << (session.state_of(bob) == sa::ObjectState::persistent ? "persistent again" : "gone") << "\n";

        step("13. A failed flush, and recovery");
        session.add(std::make_shared<User>(User{0, "ed", "duplicate", ""}));
        try {
            session.flush();
        } catch (const sa::IntegrityError& e) {
            std::cout << "IntegrityError: " << e.orig() << "\n";
        }
        try {
            session.query<User>().count();
        } catch (const sa::PendingRollbackError&) {
            std::cout << "PendingRollbackError until rollback()\n";
        }
        session.rollback();
        total = session.query<User>().count();
        std::cout << "users: " << total << "\n";

        step("14. Bulk operations");
        std::vector<sa::Params> bulk;
        for (int i = 0; i < 3; ++i) bulk.push_back({{"name", "bulk" + std::to_string(i)}, {"fullname", "Bulk"}});
        session.bulk_insert_mappings<User>(bulk);
        session.commit();
        total = session.query<User>().count();
        std::cout << "users: " << total << "\n";

        step("15. Relationships: User and Address");
        sa::DeclarativeBase RelBase;
        RelBase.declare<Person>("people",
            sa::mapped_column("id", &Person::id, sa::primary_key()),
            sa::mapped_column("name", &Person::name, sa::String(50)),
            sa::mapped_column("fullname", &Person::fullname, sa::String(50)),
            sa::relationship("addresses", &Person::addresses, sa::back_populates(&Mail::user),
                             sa::cascade("all, delete-orphan"), sa::order_by(&Mail::id)));
        RelBase.declare<Mail>("mails",
            sa::mapped_column("id", &Mail::id, sa::primary_key()),
            sa::mapped_column("email_address", &Mail::email_address, sa::String(100), sa::nullable(false)),
            sa::mapped_column("user_id", &Mail::user_id, sa::ForeignKey("people.id")),
            sa::relationship("user", &Mail::user, sa::back_populates(&Person::addresses)));
        RelBase.metadata.create_all(*engine);
        sa::Session rel(engine);
        auto jk = std::make_shared<Person>(Person{.id = 0, .name = "jack", .fullname = "Jack Bean", .addresses = {}});
        jk->addresses = {std::make_shared<Mail>(Mail{.id = 0, .email_address = "jack@google.com", .user_id = {}, .user = {}}),
                           std::make_shared<Mail>(Mail{.id = 0, .email_address = "j25@yahoo.com", .user_id = {}, .user = {}})};
        rel.add(jk);  // save-update cascade: the addresses are pending too
        std::cout << "back_populates: " << jk->addresses[1]->user->name << "\n";
        rel.commit();
        std::cout << "jack has " << jk->addresses.size() << " addresses (one lazy SELECT)\n";
        auto found = rel.query<Person>().join(&Person::addresses)
                         .filter(sa::attr(&Mail::email_address) == "jack@google.com").all();
        std::cout << "joined query found " << found.size() << " user\n";
        auto eager = rel.query<Person>().options(sa::selectinload(&Person::addresses)).all();
        std::cout << "selectinload: " << eager.front()->addresses.size() << " addresses, no further SQL\n";
        sa::Session rel2(engine);
        auto mails = rel2.query<Mail>().options(sa::joinedload(&Mail::user)).all();  // 1 SELECT, LEFT OUTER JOIN
        std::cout << "joinedload: " << mails.size() << " addresses of " << mails.front()->user->name << "\n";
        jk->addresses.erase(jk->addresses.begin());  // delete-orphan
        rel.commit();
        rel.delete_(jk);
        rel.commit();  // DELETE the remaining address, then the user
        return 0;
    } catch (const sa::Error& e) {
        std::cerr << "athanor error: " << e.what() << "\n";
        return 1;
    }
}
