// sbx get KIND [NAME...] [-o wide|json|yaml|name] [-l SELECTOR] [-w] [-A]
#include "cli/commands.h"
#include "cli/printer.h"

namespace sbx::cli {
namespace {

enum class Format { kTable, kWide, kJson, kYaml, kName };

Result<Format> ParseFormat(const std::string& o) {
  if (o.empty()) return Format::kTable;
  if (o == "wide") return Format::kWide;
  if (o == "json") return Format::kJson;
  if (o == "yaml") return Format::kYaml;
  if (o == "name") return Format::kName;
  return InvalidArgument("unable to match a printer suitable for the output format \"" + o +
                         "\", allowed formats are: json,name,wide,yaml");
}

std::string NameOf(const Json& object) {
  if (!object.contains("metadata") || !object["metadata"].is_object()) return "";
  return object["metadata"].value("name", "");
}

class Printer {
 public:
  Printer(Invocation& inv, const api::KindInfo& kind, Format format, bool all_namespaces)
      : inv_(inv), kind_(kind), format_(format) {
    table_.wide = format == Format::kWide;
    table_.with_namespace = all_namespaces;
  }

  // Prints a whole result: one object (a named get) or a list.
  void PrintResult(const std::vector<Json>& items, bool single) {
    switch (format_) {
      case Format::kJson:
        inv_.out() << ToPrettyJson(single ? items.front() : AsList(items));
        return;
      case Format::kYaml:
        inv_.out() << ToYaml(single ? items.front() : AsList(items));
        return;
      default:
        for (const auto& item : items) PrintOne(item);
        Flush();
    }
  }

  // One object as a watch reports it.
  void PrintOne(const Json& object) {
    switch (format_) {
      case Format::kJson:
        inv_.out() << ToPrettyJson(object);
        break;
      case Format::kYaml:
        inv_.out() << "---\n" << ToYaml(object);
        break;
      case Format::kName:
        inv_.out() << KindDisplayName(kind_) << "/" << NameOf(object) << "\n";
        break;
      default:
        if (!header_done_) {
          writer_.AddRow(TableHeader(kind_, table_));
          header_done_ = true;
        }
        table_.now = inv_.Now();
        writer_.AddRow(TableRow(kind_, object, table_));
    }
  }

  void Flush() {
    writer_.Flush(inv_.out());
    inv_.out().flush();
  }

 private:
  Invocation& inv_;
  const api::KindInfo& kind_;
  Format format_;
  TableOptions table_;
  TableWriter writer_;
  bool header_done_ = false;
};

int RunGet(Invocation& inv) {
  std::vector<std::string> args = inv.flags.args;
  if (args.empty()) {
    return inv.Fail(
        "you must specify the type of resource to get. Use \"sbx get sandboxes\", \"sbx get "
        "secrets\", ...");
  }
  if (args.front().find('/') != std::string::npos && args.size() > 1) {
    return inv.Fail(
        "there is no need to specify a resource type as a separate argument when "
        "passing arguments in resource/name form");
  }
  auto [kind_name, names] = SplitKindAndNames(args);
  Result<Format> format = ParseFormat(inv.flags.String("output"));
  if (!format.ok()) return inv.Fail(format.status().message());
  const api::KindInfo* kind = inv.ResolveKind(kind_name);
  if (!kind) return 1;
  bool all_ns = inv.flags.Bool("all-namespaces") && kind->namespaced;
  std::string ns = all_ns ? "" : inv.NamespaceFor(*kind);
  std::string selector = inv.flags.String("selector");
  if (!names.empty() && !selector.empty()) {
    return inv.Fail(
        "selectors and the all flag cannot be used when passing resource/name arguments");
  }

  Printer printer(inv, *kind, *format, all_ns);
  std::vector<Json> items;
  std::string resource_version;
  int rc = 0;
  if (!names.empty()) {
    items = inv.GetEach(*kind, ns, names, &rc);
    if (!items.empty()) printer.PrintResult(items, names.size() == 1);
  } else {
    Result<Json> list = inv.client.List(*kind, ns, ListOptions{selector, ""});
    if (!list.ok()) return inv.FailRequest(list.status());
    if (list->contains("items") && (*list)["items"].is_array()) {
      for (auto& item : (*list)["items"]) items.push_back(std::move(item));
    }
    if (list->contains("metadata") && (*list)["metadata"].is_object()) {
      resource_version = (*list)["metadata"].value("resourceVersion", "");
    }
    if (items.empty() &&
        (*format == Format::kTable || *format == Format::kWide || *format == Format::kName)) {
      inv.PrintNoResources(*kind, ns);
    } else {
      printer.PrintResult(items, false);
    }
  }
  if (!inv.flags.Bool("watch") || rc != 0) return rc;

  WatchOptions watch;
  watch.resource_version = resource_version;
  watch.label_selector = selector;
  if (names.size() == 1) {
    watch.field_selector = "metadata.name=" + names.front();
    if (!items.empty()) {
      const Json& meta = items.front()["metadata"];
      if (meta.is_object()) watch.resource_version = meta.value("resourceVersion", "");
    }
  }
  Status failed;
  Result<WatchEnd> end = inv.client.Watch(*kind, ns, watch, [&](const WatchEvent& event) {
    if (event.type == "ERROR") {
      failed = Status(Code::kInternal, event.object.value("message", "watch error"));
      return false;
    }
    if (event.type == "BOOKMARK") return true;
    printer.PrintOne(event.object);
    printer.Flush();
    return true;
  });
  if (!end.ok()) return inv.FailRequest(end.status());
  if (!failed.ok()) return inv.FailRequest(failed);
  return 0;
}

}  // namespace

Verb GetVerb() {
  return Verb{
      "get",
      "Display one or many objects",
      R"(Display one or many objects.

KIND is a kind, its plural or a short name: sandboxes (sandbox), sandboxclaims,
sandboxwarmpools (swp), sandboxtemplates, secrets, configmaps (cm),
namespaces (ns), events (ev). KIND/NAME is accepted too.

Tables show the columns kubectl shows for these kinds; -o wide adds more,
-o json and -o yaml print the objects (a List for several), -o name prints
kind/name. -w prints the objects, then every change as it happens.

Examples:
  # List the sandboxes in the current namespace
  sbx get sandboxes

  # One sandbox as YAML
  sbx get sandbox my-sandbox -o yaml

  # Sandboxes with a label, in every namespace, and keep watching
  sbx get sandboxes -A -l app=agent -w

Usage:
  sbx get KIND [NAME...] [options]
)",
      {{"output", 'o', FlagType::kString, "", "Output format: wide, json, yaml or name."},
       {"selector", 'l', FlagType::kString, "",
        "Label selector to filter on (e.g. -l key1=value1,key2=value2)."},
       {"watch", 'w', FlagType::kBool, "", "After listing, watch for changes."},
       {"all-namespaces", 'A', FlagType::kBool, "", "List the objects of every namespace."}},
      RunGet};
}

}  // namespace sbx::cli
