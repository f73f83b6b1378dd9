// A desktop application's database across two releases: version 1 creates it and stores
// notes; version 2 adds a column, a table and an index, splits a column in two with a
// numbered step, and drops the old column. sa::upgrade() at start-up does all of it on the
// user's file, keeping every row.
//
//   athanor-schema-demo [FILE]     (default: a fresh file in the temp directory)
#include <athanor/athanor.hpp>

#include <filesystem>
#include <iostream>

namespace sa = athanor;

namespace v1 {
struct Note {
    std::int64_t id = 0;
    std::string title;
    std::string author;  // "First Last"
};

void run(const std::shared_ptr<sa::Engine>& engine) {
    sa::DeclarativeBase Base;
    Base.declare<Note>("notes", sa::mapped_column("id", &Note::id, sa::primary_key()),
                       sa::mapped_column("title", &Note::title, sa::String(100)),
                       sa::mapped_column("author", &Note::author, sa::String(100)));
    sa::upgrade(*engine, Base.metadata);  // a new file: creates the tables
    sa::Session session(engine);
    session.add(std::make_shared<Note>(Note{0, "groceries", "Ed Jones"}));
    session.add(std::make_shared<Note>(Note{0, "taxes", "Wendy Williams"}));
    session.commit();
}
}  // namespace v1

namespace v2 {
struct Note {
    std::int64_t id = 0;
    std::string title;
    std::string first_name, last_name;  // author, split
    std::optional<std::string> color;   // new
};
struct Tag {
    std::int64_t id = 0;
    std::int64_t note_id = 0;
    std::string label;
};

void run(const std::shared_ptr<sa::Engine>& engine) {
    sa::DeclarativeBase Base;
    Base.declare<Note>("notes", sa::mapped_column("id", &Note::id, sa::primary_key()),
                       sa::mapped_column("title", &Note::title, sa::String(100), sa::index()),
                       sa::mapped_column("first_name", &Note::first_name, sa::String(50), sa::server_default("")),
                       sa::mapped_column("last_name", &Note::last_name, sa::String(50), sa::server_default("")),
                       sa::mapped_column("color", &Note::color, sa::String(20)));
    Base.declare<Tag>("tags", sa::mapped_column("id", &Tag::id, sa::primary_key()),
                      sa::mapped_column("note_id", &Tag::note_id, sa::ForeignKey("notes.id")),
                      sa::mapped_column("label", &Tag::label, sa::String(30)));
    const auto& notes = Base.metadata.get_table("notes");

    // What comparing schemas cannot know: how "author" becomes first and last name. Step 1
    // runs once, after the new columns exist and before the old one is dropped.
    sa::Migrations steps;
    steps.step(1, "split author into first and last name", [&](sa::Connection& c) {
        for (const sa::Row& r : c.execute(sa::text("SELECT id, author FROM notes")).all()) {
            auto author = r.get<std::string>("author");
            auto space = author.find(' ');
            c.execute(notes.update()
                          .where(notes.c["id"] == r.get<std::int64_t>("id"))
                          .values({{"first_name", author.substr(0, space)},
                                   {"last_name", space == std::string::npos ? "" : author.substr(space + 1)}}));
        }
    });

    std::cout << "version 2 starts; the plan against the user's file:\n"
              << sa::plan_migration(*engine, Base.metadata).to_string();
    auto result = sa::upgrade(*engine, Base.metadata, steps, {.allow_data_loss = true});
    std::cout << result.applied.size() << " change(s) applied, step(s) run:";
    for (int v : result.steps_run) std::cout << " " << v;
    std::cout << ", schema version " << sa::schema_version(*engine) << "\n";

    sa::Session session(engine);
    for (const auto& n : session.query<Note>().order_by(notes.c["id"]).all())
        std::cout << "  note " << n->id << ": " << n->title << " by " << n->first_name << " / " << n->last_name << "\n";
    session.add(std::make_shared<Tag>(Tag{0, 1, "home"}));
    session.commit();
    std::cout << "a second start-up: "
              << (sa::upgrade(*engine, Base.metadata, steps).applied.empty() ? "nothing to do" : "changes?!") << "\n";
}
}  // namespace v2

int main(int argc, char** argv) {
    std::filesystem::path file =
        argc > 1 ? std::filesystem::path(argv[1]) : std::filesystem::temp_directory_path() / "athanor_schema_demo.db";
    std::filesystem::remove(file);
    auto engine = sa::create_engine("sqlite:///" + file.string(), {.foreign_keys = true});
    v1::run(engine);
    v2::run(engine);
    engine->dispose();
    std::filesystem::remove(file);
    return 0;
}
