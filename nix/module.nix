# NixOS module: run `rebootguard node restore` before k3s on every boot,
# back up flannel's subnet.env whenever it changes, and optionally run the
# node agent (`rebootguard agent`). Mirrors the units in deploy/systemd/.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.rebootguard;
  agent = cfg.agent;
  inherit (lib) mkEnableOption mkIf mkOption types;
  flags = lib.escapeShellArgs (
    [ "--profile" cfg.profile "--store-dir" cfg.backupDir ]
    ++ lib.optionals (cfg.nodeName != null) [ "--node-name" cfg.nodeName ]
    ++ cfg.extraArgs
  );
  bin = "${cfg.package}/bin/rebootguard";

  settingsFormat = pkgs.formats.toml { };
  # An absolute path that is not in the Nix store (which anyone can read).
  secretPath = types.strMatching "/.*";
  inStore = path: path != null && lib.hasPrefix "${builtins.storeDir}/" path;
  alertEntry = alert: lib.filterAttrs (_: v: v != null) {
    inherit (alert) kind url;
    url-file = alert.urlFile;
    url-env = alert.urlEnv;
    token-file = alert.tokenFile;
    token-env = alert.tokenEnv;
  };
  # The [agent] table; secrets stay in files or the environment, only their
  # names are written here.
  agentToml = settingsFormat.generate "rebootguard-agent.toml" {
    agent = agent.settings // lib.optionalAttrs (agent.alerts != [ ]) {
      alert = map alertEntry agent.alerts;
    };
  };
  agentFlags = lib.escapeShellArgs (
    [ "--config" "${agentToml}" (if agent.taint then "--taint" else "--no-taint") ]
    ++ agent.extraArgs
  );
in
{
  options.services.rebootguard = {
    enable = mkEnableOption "rebootguard, which restores flannel's subnet.env before k3s starts";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The rebootguard package to use.";
    };

    k3sUnits = mkOption {
      type = types.listOf types.str;
      default = [ "k3s.service" ];
      example = [ "k3s.service" "k3s-agent.service" ];
      description = ''
        The units that run k3s. The restore runs before them and is wanted
        by them; its failure never keeps them from starting.
      '';
    };

    backupDir = mkOption {
      type = types.str;
      default = "/var/lib/rebootguard";
      description = "Where backups of subnet.env are kept (persistent storage).";
    };

    profile = mkOption {
      type = types.enum [ "k3s" "kube-flannel" ];
      default = "k3s";
      description = "Which flannel deployment the node runs.";
    };

    nodeName = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "The Kubernetes node name; by default k3s's node-name, else the hostname.";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--api-timeout" "1s" ];
      description = "Extra arguments for every rebootguard node command (and the agent).";
    };

    agent = {
      enable = mkEnableOption ''
        the rebootguard node agent (rebootguard-agent.service): it keeps the
        Node condition PodNetworkReady true to whether pods on this node get
        networking, restores subnet.env, restarts k3s once under a
        cluster-wide Lease and alerts. It runs alongside k3s and never holds
        it back. Run it here or as the DaemonSet, not both'';

      taint = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Manage the readiness taint rebootguard.io/pod-network-unready:NoSchedule:
          on at start and while pods get no networking, off once a check and a
          probe pass. Only pods that tolerate it are scheduled onto a tainted node.
        '';
      };

      settings = mkOption {
        type = settingsFormat.type;
        default = { };
        example = lib.literalExpression ''
          {
            restart-grace = "1m";
            max-restarts = 2;
            listen = "0.0.0.0:9478";
          }
        '';
        description = ''
          Keys of the config file's [agent] table (docs/agent.md), e.g.
          restart-grace, heartbeat, lease-name, listen. Use the taint and
          alerts options for those two. Rendered into a TOML file in the Nix
          store that the agent reads with --config (the host's
          /etc/rebootguard/config.toml is not read by the agent); node
          settings come from the options above.
        '';
      };

      alerts = mkOption {
        default = [ ];
        example = lib.literalExpression ''
          [ { kind = "slack"; urlFile = "/run/secrets/rebootguard-slack-url"; } ]
        '';
        description = ''
          Webhooks the agent alerts. A URL or token with a secret in it is
          named by a file (urlFile, tokenFile: read by the agent, as root,
          when it sends; e.g. from sops-nix or agenix) or an environment
          variable (urlEnv, tokenEnv: see environmentFile), never written
          into the Nix store.
        '';
        type = types.listOf (types.submodule {
          options = {
            kind = mkOption {
              type = types.enum [ "json" "slack" "ntfy" ];
              default = "json";
              description = "The payload: json, slack (incoming webhook) or ntfy.";
            };
            url = mkOption {
              type = types.nullOr types.str;
              default = null;
              description = "The URL, when it holds no secret (it ends up in the Nix store).";
            };
            urlFile = mkOption {
              type = types.nullOr secretPath;
              default = null;
              description = "A file (outside the Nix store) whose first line is the URL.";
            };
            urlEnv = mkOption {
              type = types.nullOr types.str;
              default = null;
              description = "An environment variable holding the URL.";
            };
            tokenFile = mkOption {
              type = types.nullOr secretPath;
              default = null;
              description = "A file (outside the Nix store) holding a bearer token.";
            };
            tokenEnv = mkOption {
              type = types.nullOr types.str;
              default = null;
              description = "An environment variable holding a bearer token.";
            };
          };
        });
      };

      environmentFile = mkOption {
        type = types.nullOr secretPath;
        default = null;
        example = "/run/secrets/rebootguard-agent.env";
        description = ''
          A file of VAR=value lines (systemd's EnvironmentFile=, read by
          systemd, never copied to the store) for alerts' urlEnv and tokenEnv.
        '';
      };

      extraArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "--dry-run" ];
        description = "Extra arguments for `rebootguard agent`.";
      };
    };
  };

  config = lib.mkMerge [ (mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];

    systemd.tmpfiles.rules = [ "d ${cfg.backupDir} 0755 root root -" ];

    systemd.services.rebootguard-restore = {
      description = "Restore flannel's subnet.env before k3s starts (rebootguard)";
      documentation = [ "man:rebootguard-node-restore(1)" ];
      after = [ "local-fs.target" "network-online.target" ];
      wants = [ "network-online.target" ];
      before = cfg.k3sUnits;
      wantedBy = cfg.k3sUnits;
      serviceConfig = {
        Type = "oneshot";
        # "-": a failed restore never fails the unit, so never holds k3s back.
        ExecStart = "-${bin} node ${flags} restore";
        TimeoutStartSec = "30s";
      };
    };

    systemd.services.rebootguard-backup = {
      description = "Back up flannel's subnet.env (rebootguard)";
      documentation = [ "man:rebootguard-node-backup(1)" ];
      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${bin} node ${flags} backup";
      };
    };

    systemd.paths.rebootguard-backup = {
      description = "Watch flannel's subnet.env for rebootguard backups";
      wantedBy = [ "multi-user.target" ];
      pathConfig = {
        PathChanged = "/run/flannel/subnet.env";
        Unit = "rebootguard-backup.service";
      };
    };
  })

  (mkIf agent.enable {
    assertions = [
      {
        assertion = !(agent.settings ? taint) && !(agent.settings ? alert);
        message = "services.rebootguard.agent: set the taint and alerts options, not settings.taint or settings.alert.";
      }
      {
        assertion = lib.all
          (a: lib.length (lib.filter (v: v != null) [ a.url a.urlFile a.urlEnv ]) == 1)
          agent.alerts;
        message = "services.rebootguard.agent.alerts: each alert needs exactly one of url, urlFile or urlEnv.";
      }
      {
        assertion = lib.all (a: !(inStore a.urlFile) && !(inStore a.tokenFile)) agent.alerts
          && !(inStore agent.environmentFile);
        message = "services.rebootguard.agent: secret files must not be in the Nix store (anyone can read it); point at e.g. /run/secrets/...";
      }
    ];

    environment.systemPackages = [ cfg.package ];

    # As deploy/systemd/rebootguard-agent.service; docs/deploy.md explains
    # every setting.
    systemd.services.rebootguard-agent = {
      description = "rebootguard node agent (PodNetworkReady, healing, alerts)";
      documentation = [ "man:rebootguard-agent(1)" ];
      # Beside k3s, never holding it back: no dependency on it either way.
      after = [ "network-online.target" "rebootguard-restore.service" ];
      wants = [ "network-online.target" ];
      wantedBy = [ "multi-user.target" ];
      # k3s is restarted over the D-Bus system bus (/run/dbus/system_bus_socket),
      # which nothing below hides: AF_UNIX is allowed, /run stays as it is.
      serviceConfig = {
        Type = "notify";
        ExecStart = "${bin} agent ${flags} ${agentFlags}";
        TimeoutStartSec = "infinity";
        WatchdogSec = "60s";
        Restart = "always";
        RestartSec = "5s";
        KillMode = "mixed";
        TimeoutStopSec = "30s";
        CapabilityBoundingSet = "CAP_NET_ADMIN CAP_NET_RAW CAP_SYS_ADMIN CAP_DAC_OVERRIDE";
        NoNewPrivileges = "yes";
        ProtectSystem = "full";
        ProtectHome = "read-only";
        PrivateTmp = "yes";
        ProtectKernelModules = "yes";
        ProtectKernelLogs = "yes";
        ProtectControlGroups = "yes";
        ProtectHostname = "yes";
        RestrictNamespaces = "net mnt";
        RestrictAddressFamilies = "AF_UNIX AF_NETLINK AF_INET AF_INET6 AF_PACKET";
        RestrictRealtime = "yes";
        RestrictSUIDSGID = "yes";
        LockPersonality = "yes";
        SystemCallArchitectures = "native";
        MemoryMax = "256M";
      } // lib.optionalAttrs (agent.environmentFile != null) {
        EnvironmentFile = agent.environmentFile;
      };
    };
  })];
}
