# NixOS module: run `rebootguard node restore` before k3s on every boot and
# back up flannel's subnet.env whenever it changes. Mirrors the units in
# deploy/systemd/.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.rebootguard;
  inherit (lib) mkEnableOption mkIf mkOption types;
  flags = lib.escapeShellArgs (
    [ "--profile" cfg.profile "--store-dir" cfg.backupDir ]
    ++ lib.optionals (cfg.nodeName != null) [ "--node-name" cfg.nodeName ]
    ++ cfg.extraArgs
  );
  bin = "${cfg.package}/bin/rebootguard";
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
      description = "Extra arguments for every rebootguard node command.";
    };
  };

  config = mkIf cfg.enable {
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
  };
}
