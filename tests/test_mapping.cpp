// Classical mapping, declarative mapping on the same registry, Record, attr(), events.
#include "fixtures.hpp"

#include <nlohmann/json.hpp>

namespace {
struct User {
    std::int64_t id = 0;
    std::string name, fullname, password;
};
struct Customer {
    std::int64_t id = 0;
    std::string name, description;
};
struct Opt {
    std::int64_t id = 0;
    std::optional<std::string> fullname;
    std::optional<double> score;
};
struct NoDefault {
    explicit NoDefault(int) {}
};
}  // namespace

class Mapping : public ::testing::Test, public UsersSchema {
protected:
    sa::Registry registry;
};

TEST_F(Mapping, ApiClassicalMappingBothAccessorForms) {
    registry.map_imperatively<User>(users)
        .column("id", &User::id)
        .column("name", &User::name)
        .column("fullname", [](const User& u) { return u.fullname; },
                [](User& u, std::string v) { u.fullname = std::move(v); })
        .column("password", &User::password);
    const sa::Mapper& m = registry.mapper_of<User>();
    EXPECT_EQ(&m.table(), &users);
    ASSERT_EQ(m.columns().size(), 4u);
    User u{.id = 7, .name = "ed", .fullname = "Ed Jones", .password = "pw"};
    std::vector<sa::Value> vals;
    m.read(&u, vals);
    EXPECT_EQ(vals, (std::vector<sa::Value>{7, "ed", "Ed Jones", "pw"}));
    EXPECT_EQ(m.identity(&u), std::vector<sa::Value>{7});
    auto obj = std::static_pointer_cast<User>(m.create());
    m.write(obj.get(), {8, "wendy", "Wendy W", "x"});
    EXPECT_EQ(obj->id, 8);
    EXPECT_EQ(obj->fullname, "Wendy W");
}

TEST_F(Mapping, UnmappedColumnsAreLeftOut) {
    registry.map_imperatively<User>(users).column("id", &User::id).column("name", &User::name);
    const auto& m = registry.mapper_of<User>();
    EXPECT_EQ(m.columns().size(), 2u);
    EXPECT_EQ(m.find("password"), nullptr);
}

TEST_F(Mapping, TypeMismatchIsCaughtWhenDeclared) {
    struct Bad {
        std::int64_t id = 0;
        std::int64_t name = 0;
        std::string idtext;
    };
    auto b = registry.map_imperatively<Bad>(users);
    try {
        b.column("name", &Bad::name);
        FAIL() << "expected ArgumentError";
    } catch (const sa::ArgumentError& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("users.name"), std::string::npos) << msg;
        EXPECT_NE(msg.find("String(50)"), std::string::npos) << msg;
    }
    EXPECT_THROW(b.column("id", &Bad::idtext), sa::ArgumentError);
    EXPECT_THROW(b.column("nope", &Bad::id), sa::ArgumentError);
}

TEST_F(Mapping, MissingPrimaryKeyIsArgumentError) {
    registry.map_imperatively<User>(users).column("name", &User::name);
    EXPECT_THROW(registry.mapper_of<User>(), sa::ArgumentError);
}

TEST_F(Mapping, DoubleMappingAndUnmapped) {
    registry.map_imperatively<User>(users).column("id", &User::id);
    EXPECT_THROW(registry.map_imperatively<User>(users), sa::ArgumentError);
    EXPECT_THROW(registry.mapper_of<Customer>(), sa::UnmappedClassError);
    EXPECT_THROW(registry.map_imperatively<User>(users).column("id", &User::id), sa::ArgumentError);
}

TEST_F(Mapping, OptionalMembersAndNull) {
    sa::MetaData m;
    sa::Table& t = m.table("o", sa::Column("id", sa::Integer(), sa::primary_key()),
                           sa::Column("fullname", sa::String()), sa::Column("score", sa::Float()));
    registry.map_imperatively<Opt>(t).column("id", &Opt::id).column("fullname", &Opt::fullname).column("score", &Opt::score);
    const auto& mp = registry.mapper_of<Opt>();
    Opt o;
    mp.write(&o, {1, nullptr, 2.5});
    EXPECT_EQ(o.fullname, std::nullopt);
    EXPECT_EQ(o.score, 2.5);
    std::vector<sa::Value> v;
    mp.read(&o, v);
    EXPECT_TRUE(v[1].is_null());
    // NULL into a non-optional member is a clear error, not a crash.
    registry.map_imperatively<User>(users).column("id", &User::id).column("fullname", &User::fullname);
    User u;
    EXPECT_THROW(registry.mapper_of<User>().write(&u, {1, nullptr}), sa::ArgumentError);
}

TEST_F(Mapping, DefaultRegistryMapper) {
    struct Local {
        std::int64_t id = 0;
    };
    sa::mapper<Local>(users).column("id", &Local::id);
    EXPECT_EQ(&sa::default_registry().mapper_of<Local>().table(), &users);
}

TEST_F(Mapping, AttrIsAColumnExpression) {
    registry.map_imperatively<User>(users).column("id", &User::id).column("name", &User::name);
    EXPECT_EQ(sql(sa::select(sa::attr(&User::id)).where(sa::attr(&User::name) == "ed")),
              "SELECT users.id \nFROM users \nWHERE users.name = ?");
    EXPECT_THROW(sa::attr(&User::password), sa::UnmappedClassError);
}

TEST_F(Mapping, ApiDeclarative) {
    sa::DeclarativeBase Base;
    Base.declare<Customer>("customer",
        sa::mapped_column("id", &Customer::id, sa::primary_key()),
        sa::mapped_column("name", &Customer::name, sa::String(255)),
        sa::mapped_column("description", &Customer::description, sa::String(255)));
    auto engine = testdb::engine();
    Base.metadata.create_all(*engine);
    const sa::Table& t = Base.metadata.get_table("customer");
    EXPECT_EQ(t.column("id").type(), sa::Integer());
    EXPECT_EQ(&Base.registry.mapper_of<Customer>().table(), &t);
    EXPECT_EQ(sql(sa::select(sa::attr(&Customer::id)).where(sa::attr(&Customer::name) == "ed")),
              "SELECT customer.id \nFROM customer \nWHERE customer.name = ?");
}

TEST_F(Mapping, ClassicalAndDeclarativeProduceTheSameTableAndSql) {
    sa::DeclarativeBase Base;
    Base.declare<Customer>("customer",
        sa::mapped_column("id", &Customer::id, sa::primary_key()),
        sa::mapped_column("name", &Customer::name, sa::String(255), sa::nullable(false), sa::unique()),
        sa::mapped_column("description", &Customer::description, sa::Text()),
        sa::Index{"ix_c", {"name", "description"}, false});
    sa::MetaData m;
    sa::Table& classic = m.table("customer", sa::Column("id", sa::Integer(), sa::primary_key()),
                                 sa::Column("name", sa::String(255), sa::nullable(false), sa::unique()),
                                 sa::Column("description", sa::Text()), sa::Index{"ix_c", {"name", "description"}, false});
    struct Customer2 {  // one class has one mapper, so the classical side maps a twin
        std::int64_t id = 0;
        std::string name, description;
    };
    sa::Registry r2;
    r2.map_imperatively<Customer2>(classic).column("id", &Customer2::id).column("name", &Customer2::name)
        .column("description", &Customer2::description);
    const sa::Table& decl = Base.metadata.get_table("customer");
    EXPECT_EQ(sa::create_table_sql(decl, sa::sqlite_dialect()), sa::create_table_sql(classic, sa::sqlite_dialect()));
    EXPECT_EQ(sa::create_index_sql(decl, sa::sqlite_dialect()), sa::create_index_sql(classic, sa::sqlite_dialect()));
    EXPECT_EQ(sql(decl.insert().values({{"name", "x"}})), sql(classic.insert().values({{"name", "x"}})));
    EXPECT_EQ(Base.registry.mapper_of<Customer>().columns().size(), r2.mapper_of<Customer2>().columns().size());
}

TEST_F(Mapping, DeclarativeFailureLeavesNothingBehind) {
    sa::DeclarativeBase Base;
    EXPECT_THROW(Base.declare<Customer>("customer", sa::mapped_column("id", &Customer::id, sa::primary_key()),
                                        sa::UniqueConstraint{{"nope"}}),
                 sa::ArgumentError);
    EXPECT_FALSE(Base.metadata.contains("customer"));
    EXPECT_THROW(Base.registry.mapper_of<Customer>(), sa::UnmappedClassError);
}

TEST_F(Mapping, RecordOverJsonSchema) {
    auto doc = nlohmann::json::parse(R"({"tables": [{"name": "item", "columns": [
        {"name": "id", "type": "Integer", "primary_key": true, "nullable": false},
        {"name": "label", "type": "String", "length": 40, "nullable": true}]}]})");
    sa::MetaData m = sa::MetaData::from_json(doc);
    const sa::Table& item = m.get_table("item");
    sa::Mapper& mp = registry.map_dynamic(item);
    EXPECT_TRUE(mp.dynamic());
    EXPECT_EQ(&registry.dynamic_mapper("item"), &mp);
    auto obj = std::static_pointer_cast<sa::Record>(mp.create());
    obj->set("id", 3);
    obj->set("label", "box");
    EXPECT_EQ(obj->get<std::string>("label"), "box");
    EXPECT_TRUE(obj->has("label"));
    EXPECT_FALSE(obj->has("nope"));
    EXPECT_THROW(obj->set("nope", 1), sa::ArgumentError);
    EXPECT_THROW(obj->set("id", "text"), sa::ArgumentError);
    EXPECT_EQ(mp.identity(obj.get()), std::vector<sa::Value>{3});
    std::vector<sa::Value> v;
    mp.read(obj.get(), v);
    EXPECT_EQ(v, (std::vector<sa::Value>{3, "box"}));
    EXPECT_THROW(registry.map_dynamic(item), sa::ArgumentError);
}

TEST_F(Mapping, RecordOverReflectedSchema) {
    auto engine = testdb::engine();
    metadata.create_all(*engine);
    sa::MetaData r;
    r.reflect(*engine);
    const sa::Mapper& mp = registry.map_dynamic(r.get_table("users"));
    sa::Record rec(r.get_table("users"));
    rec.set("name", "ed");
    EXPECT_EQ(mp.columns().size(), 4u);
    EXPECT_EQ(mp.primary_key(), std::vector<std::size_t>{0});
    EXPECT_EQ(rec.get<std::string>("name"), "ed");
    EXPECT_TRUE(rec.value("id").is_null());
}

TEST_F(Mapping, EventsDispatchInOrder) {
    registry.map_imperatively<User>(users).column("id", &User::id).column("name", &User::name);
    sa::Mapper& m = registry.mapper_of<User>();
    std::vector<std::string> seen;
    sa::listen<User>(m, sa::MapperEvent::before_insert, [&](User& u) { seen.push_back("bi:" + u.name); u.name += "!"; });
    sa::listen<User>(m, sa::MapperEvent::after_insert, [&](User& u) { seen.push_back("ai:" + u.name); });
    User u{.id = 1, .name = "ed", .fullname = "", .password = ""};
    EXPECT_TRUE(m.has_listeners(sa::MapperEvent::before_insert));
    EXPECT_FALSE(m.has_listeners(sa::MapperEvent::before_delete));
    m.dispatch(sa::MapperEvent::before_insert, &u);
    m.dispatch(sa::MapperEvent::after_insert, &u);
    EXPECT_EQ(seen, (std::vector<std::string>{"bi:ed", "ai:ed!"}));
}
