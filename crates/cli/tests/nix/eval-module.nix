# Evaluates nix/module.nix without nixpkgs, for crates/cli/tests/deploy.rs:
# just enough of nixpkgs' lib (options and their defaults, mkIf, mkMerge,
# optionalAttrs, escapeShellArgs, ...) to get the units the module defines
# and its failed assertions, as JSON, for a few configurations. Option types
# are not checked here; nixos-rebuild does that.
#
#   nix-instantiate --read-write-mode --eval --strict --json crates/cli/tests/nix/eval-module.nix
#
# (--read-write-mode: the generated config file is written to the store.)
let
  module = ../../../../nix/module.nix;
  inherit (builtins) attrNames concatLists concatStringsSep filter foldl' isAttrs isList
    listToAttrs map mapAttrs replaceStrings stringLength substring toJSON;

  lib = rec {
    mkOption = option: option // { _type = "option"; };
    mkEnableOption = name: mkOption { default = false; description = "Whether to enable ${name}."; };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    optionals = condition: list: if condition then list else [ ];
    optionalAttrs = condition: set: if condition then set else { };
    concatMap = f: list: concatLists (map f list);
    filterAttrs = keep: set: listToAttrs (concatMap
      (name: if keep name set.${name} then [{ inherit name; value = set.${name}; }] else [ ])
      (attrNames set));
    hasPrefix = prefix: text: substring 0 (stringLength prefix) text == prefix;
    inherit (builtins) all filter length;
    escapeShellArg = arg: "'${replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";
    escapeShellArgs = args: concatStringsSep " " (map escapeShellArg args);
    types = let type = name: { inherit name; }; in {
      bool = type "bool";
      str = type "str";
      package = type "package";
      enum = _: type "enum";
      listOf = _: type "listOf";
      nullOr = _: type "nullOr";
      submodule = _: type "submodule";
      strMatching = _: type "strMatching";
    };
  };

  pkgs = {
    callPackage = _: _: { outPath = "/nix/store/00000000000000000000000000000000-rebootguard-0.1.0"; };
    # The real one writes TOML; JSON of the same value is what the test reads.
    formats.toml = _: {
      type = lib.types.str;
      generate = name: value: builtins.toFile name (toJSON value);
    };
  };

  isOption = v: isAttrs v && (v._type or null) == "option";
  defaults = options: mapAttrs (_: o: if isOption o then o.default or null else defaults o) options;
  plain = v: isAttrs v && !(v ? outPath);
  override = base: over: base // mapAttrs
    (name: v: if plain v && base ? ${name} && plain base.${name} then override base.${name} v else v)
    over;

  # What the module system does with mkIf and mkMerge, for this module.
  merge = a: b: a // mapAttrs
    (name: v:
      if plain v && plain (a.${name} or null) then merge a.${name} v
      else if isList v && isList (a.${name} or null) then a.${name} ++ v
      else v)
    b;
  resolve = v:
    if isAttrs v && (v._type or null) == "if" then (if v.condition then resolve v.content else null)
    else if isAttrs v && (v._type or null) == "merge" then
      foldl' merge { } (filter (x: x != null) (map resolve v.contents))
    else if plain v then lib.filterAttrs (_: x: x != null) (mapAttrs (_: resolve) v)
    else v;

  evaluate = settings:
    let
      self = import module {
        inherit lib pkgs;
        config.services.rebootguard = override (defaults self.options.services.rebootguard) settings;
      };
    in
    resolve self.config;

  alert = a: { kind = "json"; url = null; urlFile = null; urlEnv = null; tokenFile = null; tokenEnv = null; } // a;

  scenarios = {
    restore = { enable = true; };
    agent = {
      enable = true;
      nodeName = "boromir";
      agent = {
        enable = true;
        taint = true;
        settings = { restart-grace = "1m"; listen = "0.0.0.0:9478"; };
        alerts = [
          (alert { kind = "slack"; urlFile = "/run/secrets/slack-url"; })
          (alert { urlEnv = "HOOK_URL"; tokenFile = "/run/secrets/hook-token"; })
        ];
        environmentFile = "/run/secrets/rebootguard-agent.env";
      };
    };
    agentOnly = { agent.enable = true; };
    secretInStore = {
      agent = { enable = true; alerts = [ (alert { urlFile = "${builtins.storeDir}/abc-slack-url"; }) ]; };
    };
    twoUrls = {
      agent = { enable = true; alerts = [ (alert { url = "http://hooks.example/x"; urlEnv = "HOOK_URL"; }) ]; };
    };
    taintInSettings = { agent = { enable = true; settings.taint = true; }; };
  };
in
mapAttrs
  (_: settings:
    let config = evaluate settings; in {
      services = (config.systemd or { }).services or { };
      paths = (config.systemd or { }).paths or { };
      failedAssertions = map (a: a.message) (filter (a: !a.assertion) (config.assertions or [ ]));
    })
  scenarios
