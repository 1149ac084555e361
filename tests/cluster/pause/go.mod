// Its own module, so that the control-plane wrapper module around it (tests/cluster/go.mod)
// neither builds nor tidies it.
module kubectl-rails.local/testcluster/pause

go 1.22
