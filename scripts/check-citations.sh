#!/usr/bin/env bash
# check-citations.sh: comments and docs cite files inside the repository (`docs/...`), never the
# read-only notes the project was started from, which are not part of it. Fails (exit 1, one line
# per hit) when a tracked file cites SPEC.md, DESIGN.md or one of the reference notes
# (ztunnel-behaviour, reliability, ecosystem, style-anchors, perf-anchors) by their old names, or
# points into `../shared`. Their replacements keep the same section numbers:
#   docs/contract.md, docs/design.md, docs/ztunnel-reference.md, docs/reliability.md,
#   docs/ecosystem.md, docs/style.md, docs/perf-anchors.md.
# One exception: `../shared/reference/protos` is where the optional proto-compatibility test and the
# agent scenario look for Istio's .proto files (a data location, overridable with
# ZT_REFERENCE_PROTOS), not a citation.
set -euo pipefail
cd "$(dirname "$0")/.."

git ls-files -z | perl -0 -ne '
    chomp;
    my $f = $_;
    next if $f =~ m{^build/} || $f eq "scripts/check-citations.sh";
    next unless -f $f;
    open(my $fh, "<", $f) or next;
    local $/;
    my $text = <$fh>;
    close $fh;
    next if $text =~ /\x00/;    # binary
    my @lines = split /\n/, $text, -1;
    for my $i (0 .. $#lines) {
        my $l = $lines[$i];
        my $next = $i < $#lines ? $lines[$i + 1] : "";
        (my $scan = $l) =~ s{\.\./shared/reference/protos}{}g;    # the one allowed path
        my @why;
        push @why, "SPEC.md"                if $scan =~ /(?<![\w\/.-])SPEC(?:\.md| §|\x27s\b)|\bthe SPEC\b/;
        push @why, "DESIGN.md"              if $scan =~ /(?<![\w\/.-])DESIGN(?:\.md| "|\x27s\b)/;
        push @why, "ztunnel-behaviour.md"   if $scan =~ /ztunnel-behaviour/;
        push @why, "style-anchors.md"       if $scan =~ /style-anchors/;
        push @why, "perf-anchors.md"        if $scan =~ /(?<![\w\/.-])perf-anchors/;
        push @why, "reliability.md"         if $scan =~ /(?<![\w\/.-])reliability(?:\.md|[ \t]+(?:§|[A-F]\d))/
            || ($scan =~ /(?<![\w\/.-])reliability[ \t]*$/ && $next =~ /^[ \t]*(?:\/\/|#)[ \t]*§/);
        push @why, "ecosystem.md"           if $scan =~ /(?<![\w\/.-])ecosystem(?:\.md|[ \t]+§)/
            || ($scan =~ /(?<![\w\/.-])ecosystem[ \t]*$/ && $next =~ /^[ \t]*(?:\/\/|#)[ \t]*§/);
        push @why, "../shared"              if $scan =~ m{\.\./shared\b|shared folder};
        next unless @why;
        printf "%s:%d: cites %s outside the repository (use docs/...): %s\n",
            $f, $i + 1, join(", ", @why), substr($l =~ s/^\s+//r, 0, 100);
        $main::hits++;
    }
    END { exit($main::hits ? 1 : 0) }
' && exit 0
echo "check-citations: the files above cite ../shared; cite docs/ instead (same section numbers)" >&2
exit 1
