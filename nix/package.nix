# The rebootguard binary, built from this checkout.
{ lib, rustPlatform }:

rustPlatform.buildRustPackage {
  pname = "rebootguard";
  version = "0.1.0";
  src = lib.cleanSource ../.;
  cargoLock.lockFile = ../Cargo.lock;
  cargoBuildFlags = [ "-p" "rebootguard" ];
  # The test suite needs root, network namespaces and CNI plugins.
  doCheck = false;
  postInstall = ''
    mkdir -p $out/share/man/man1
    $out/bin/rebootguard man --out-dir $out/share/man/man1
  '';
  meta = {
    description = "Keeps Kubernetes nodes truthful and working across reboots";
    license = with lib.licenses; [ mit asl20 ];
    mainProgram = "rebootguard";
    platforms = lib.platforms.linux;
  };
}
