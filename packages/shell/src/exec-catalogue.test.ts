/**
 * Programs that run other programs or inline code (catalogue.ts, readers, environment): each recognised form either
 * hands its command to the analysis (the inner program is seen) or counts as an unknown program (null), and the
 * everyday uses of the same programs stay known.
 */
import { describe, expect, it } from '@jest/globals';
import { awkRunsCommands } from './awk.js';
import { CATALOGUE, programExecution } from './catalogue.js';
import { analyzeArgv, analyzeShellCommand } from './index.js';
import { sedRunsCommands } from './sed.js';
import { gitConfigKind } from './git.js';

function programs(text: string): (string | null)[] {
  const analysis = analyzeShellCommand(text);
  expect(analysis.error).toBeUndefined();
  return analysis.commands.map((command) => command.program);
}

describe('inline code and commands read from stdin count as an unknown program', () => {
  it.each([
    // interpreters given code inline
    `python3 -c 'import os; os.remove("/tmp/x")'`,
    `python3.11 -Wignore -c 'print(1)'`,
    `python -`,
    `python3 -i script.py`,
    `perl -e 'unlink "/tmp/x"'`,
    `perl -E 'say 1'`,
    `perl -ne 'print' f`,
    `perl -MPOSIX -e1`,
    `perl '-MPOSIX;system("rm x")' script.pl`,
    `PERL5OPT=-d PERL5DB='exec "/bin/sh"' perl /dev/null`,
    `ruby -e 'File.delete("x")'`,
    `node -e 'require("fs").rmSync("x")'`,
    `node -p 1`,
    `node --eval=1`,
    `nodejs --import=data:text/javascript,process.exit app.js`,
    `node`,
    `php -r 'unlink("x");'`,
    `php -a`,
    `php -d extension=/tmp/x.so x.php`,
    `lua -e 'os.remove("x")'`,
    `luajit -e 'os.execute("x")'`,
    `tclsh`,
    `echo 'exec rm x' | tclsh`,
    `wish`,
    `expect -c 'spawn rm x'`,
    `Rscript -e 'unlink("x")'`,
    `R --no-save -e 'system("rm x")'`,
    `R --no-save < script.R`,
    `julia -e 'rm("x")'`,
    `ghc -e 'System.Process.callCommand "rm x"'`,
    `ghci`,
    `guile -c '(system "rm x")'`,
    `clisp -x '(ext:run-shell-command "rm x")'`,
    `sbcl --eval '(run-program "/bin/rm" (list "x"))'`,
    `gnuplot -e 'system("rm x")'`,
    `octave-cli --eval 'system("rm x")'`,
    `slsh -e 'system("rm x")'`,
    `jrunscript -e 'exec("rm x")'`,
    `jshell`,
    `osascript -e 'do shell script "rm x"'`,
    `groovy -e '"rm x".execute()'`,
    `elixir -e 'System.cmd("rm", ["x"])'`,
    `irb`,
    `ipython -c 'import os'`,
    `deno eval 'Deno.removeSync("x")'`,
    `bun -e 'x'`,
    `dotnet fsi`,
    `bpftrace -e 'BEGIN { system("rm x") }' --unsafe`,
    `puppet apply -e "exec { 'rm x': }"`,
    `knife exec -E 'system("rm x")'`,
    `rake -e 'sh "rm x"'`,
    `exiftool -if 'system("rm x")' f.jpg`,
    `gimp -idf --batch-interpreter=python-fu-eval -b 'import os'`,
    `bee eval 'unlink("x");'`,
    `wp eval 'unlink("x");'`,
    `pwsh -c 'Remove-Item x'`,
    `elvish -c 'rm x'`,
    // awk programs that run commands
    `awk 'BEGIN{system("rm /tmp/x")}'`,
    `gawk '{ print | "sh" }' f`,
    `mawk 'BEGIN { "date" | getline d }'`,
    `awk 'BEGIN { print "x" |& "cat" }'`,
    `gawk '@load "filefuncs"; BEGIN { }'`,
    `gawk 'BEGIN { f = "system"; @f("rm x") }'`,
    `awk -e 'BEGIN{system("x")}' f`,
    `awk -f /dev/stdin f`,
    `awk "$PROG" f`,
    `gawk -l /tmp/ext.so 'BEGIN{}'`,
    `busybox awk 'BEGIN{system("rm x")}'`,
    // sed scripts that run commands
    `sed -n '1e rm /tmp/x' /etc/hosts`,
    `sed e`,
    `sed 's/.*/rm &/e' list`,
    `sed -e 's/a/b/' -e 's/x/rm y/e' f`,
    `sed ':a;N;$!ba;s/x/y/e' f`,
    `sed -f - f`,
    `sed "s/x/$Y/" f`,
    // the program's own commands, with a shell escape
    `psql`,
    `psql -h db -U app app`,
    `psql -c '\\! rm x'`,
    `psql -c 'select 1 \\g |sh'`,
    `psql -f - db`,
    `mysql -e '\\! rm x'`,
    `mysql -e 'system rm x'`,
    `mysql db < dump.sql`,
    `mariadb --default-auth ../../tmp/lib`,
    `sqlite3 db`,
    `sqlite3 db '.shell rm x'`,
    `sqlite3 db "select load_extension('/tmp/x')"`,
    `sqlite3 -cmd '.system rm x' db 'select 1'`,
    `ed file`,
    `ex file`,
    `dc -e '!rm x'`,
    `dc`,
    `lftp -c '!rm x'`,
    `lftp host`,
    `smbclient //h/s -c '!rm x'`,
    `ftp host`,
    `telnet host 25`,
    `gdb -batch -ex bt ./prog core`,
    `debugfs -R '!rm x' /dev/sda1`,
    `hping3`,
    `asterisk -rx 'core show help'`,
    `nmap --interactive`,
    `at now`,
    `echo 'rm x' | at now + 1 minute`,
    `batch`,
    `crontab -`,
    `crontab`,
    `m4`,
    `m4 -D'x=esyscmd(rm)' f.m4`,
    `mail`,
    `mail -f`,
    `script -q /dev/null`,
    `screen`,
    `screen -dmS s rm x`,
    `tmux new-session 'rm x'`,
    `tmux send-keys 'rm x' Enter`,
    `codex exec 'delete the file'`,
    `run-parts /etc/cron.daily`,
    // TeX and roff with command execution enabled
    `latex --shell-escape doc.tex`,
    `pdflatex -shell-escape '\\immediate\\write18{rm x}'`,
    `lualatex --enable-write18 doc.tex`,
    `latexmk -e '$x = 1'`,
    `groff -U doc.ms`,
    `dvips -R0 texput.dvi`,
    // editors and pagers told to run commands
    `vi -c ':!rm x' f`,
    `vim --cmd 'silent !rm x' f`,
    `vim '+!rm x' f`,
    `vim -es < script.vim`,
    `nvim --headless -c 'lua os.remove("x")' -c q`,
    `view --remote-send ':!rm x<CR>'`,
    `less '+!rm x' f`,
    `less $'-p\\n!rm x\\n' f`,
    `ranger --cmd=shell`,
    // libraries loaded
    `ssh-keygen -D /tmp/lib.so`,
    `openssl req -engine ./lib.so`,
    `curl --engine /tmp/lib.so https://x`,
    `gcc -wrapper /bin/sh,-s x.c`,
    `cc -fplugin=/tmp/p.so x.c`,
    `ffmpeg -f lavfi -i anullsrc -af ladspa=file=/tmp/lib.so out.wav`,
    `java -agentpath:/tmp/lib.so -jar x.jar`,
    `/lib64/ld-linux-x86-64.so.2 --preload /tmp/x.so /bin/ls`,
    `fakeroot -l /tmp/x.so make`,
    `busctl --address=unixexec:path=/bin/sh,argv1=-c`,
    `sysctl 'kernel.core_pattern=|/tmp/x'`,
    // remote logins, their library and command settings
    `ssh host`,
    `ssh -I /tmp/p11.so host ls`,
    `ssh -o PKCS11Provider=/tmp/p11.so host ls`,
    `ssh -o 'Match exec "rm x"' host ls`,
    `sftp host`,
    `sftp -b - host`,
    `mosh host`,
    // git: hooks, include files, exec path, templates, the ext transport
    `git -c include.path=/tmp/evil.cfg log`,
    `git -c core.hooksPath=/tmp/hooks commit -m x`,
    `git --exec-path=/tmp x`,
    `git clone --template=/tmp/t https://x`,
    `git clone 'ext::sh -c rm% /tmp/x' d`,
    `git -c protocol.ext.allow=always fetch`,
    `git --config-env=core.pager=PAGER_VALUE log`,
    `git "$SUB" x`,
    `git config core.pager "$P"`,
    // others
    `apt-get -o APT::Update::Pre-Invoke::=/tmp/x update`,
    `hg --config alias.x='!rm y' x`,
    `fzf --preview 'rm {}'`,
    `xdg-user-dir '}; rm x #'`,
    `service ../../bin/rm x`,
    `fail2ban-client set j action a actionban 'rm x'`,
    `ksu -q -e /bin/rm x`,
    `pexec -c 'rm x'`,
    `gtester -q ./t`,
  ])('%s', (text) => {
    expect(programs(text)).toContain(null);
  });
});

describe('commands given in options and arguments are analysed: rm is seen', () => {
  it.each([
    // tar
    `tar -cf /dev/null /dev/null --checkpoint=1 --checkpoint-action=exec='rm /tmp/x'`,
    `tar -cf /dev/null /dev/null --checkpoint-act=exec='rm x'`,
    `tar --checkpoint --to-command='rm x' -xf a.tar`,
    `tar -xf a.tar --to-command 'rm x'`,
    `tar -xf a.tar --to-com='rm x'`,
    `tar xf a.tar -I 'rm x'`,
    `tar -xIrm -f a.tar`,
    `tar cfI x.tar 'rm y' dir`,
    `tar --use-compress-program='rm x' -xf a.tar`,
    `tar -F 'rm x' -M -cf a.tar d`,
    `tar --info-script='rm x' -cf a.tar d`,
    `tar --rsh-command=/bin/rm -cf h:/a.tar d`,
    `bsdtar --use-compress-program='rm x' -xf a.tar`,
    // git
    `git -c alias.x='!rm /tmp/x' x`,
    `git -c alias.x='-c core.pager=rm log' x`,
    `git -c core.pager='rm x' log`,
    `git -c core.sshCommand='rm x' fetch`,
    `git -c core.editor='rm x' commit`,
    `git -c credential.helper='!rm x' push`,
    `git -c submodule.s.update='!rm x' submodule update`,
    `git -c diff.external=/bin/rm diff`,
    `git -c filter.f.smudge='rm x' checkout .`,
    `git -c pager.log='rm x' log`,
    `git config alias.x '!rm y'`,
    `git config --global core.pager 'rm z'`,
    `git config set core.editor 'rm z'`,
    `git rebase -x 'rm x' main`,
    `git rebase --exec='rm x' main`,
    `git bisect run rm x`,
    `git submodule foreach --recursive 'rm x'`,
    `git filter-branch --tree-filter 'rm x' HEAD`,
    `git difftool -x 'rm x'`,
    `git clone -u 'rm x' https://x d`,
    `git clone --config core.pager='rm x' https://x d`,
    `git fetch --upload-pack='rm x' origin`,
    `git push --receive-pack='rm x' origin`,
    `git archive --remote=r --exec='rm x' HEAD`,
    `git send-email --sendmail-cmd='rm x' p.patch`,
    `git grep -O'rm x' needle`,
    `GIT_SSH_COMMAND='rm x' git fetch`,
    `GIT_EDITOR='rm x' git commit`,
    `GIT_SSH=/bin/rm git fetch`,
    // ssh and family
    `ssh -o ProxyCommand='rm x' h ls`,
    `ssh -oProxyCommand='rm x' h ls`,
    `ssh -o 'ProxyCommand rm x' h ls`,
    `ssh -o PermitLocalCommand=yes -o LocalCommand='rm x' h ls`,
    `ssh -o KnownHostsCommand='rm x' h ls`,
    `ssh h rm x`,
    `ssh localhost 'rm x; ls'`,
    `ssh h 'rm x' -N`,
    `ssh -oStrictHostKeyChecking=No h rm x`,
    `ssh h -o ProxyCommand='rm x' ls`,
    `autossh -M 0 h rm x`,
    `scp -S /bin/rm a h:`,
    `scp -o ProxyCommand='rm x' a h:`,
    `sftp -D /bin/rm`,
    `sftp -S /bin/rm -b batch h`,
    `sshfs -o reconnect,ssh_command='rm x' h: /mnt`,
    `sshfs -o ProxyCommand='rm x' h: /mnt`,
    `mosh --ssh='rm x' h ls`,
    `mosh h -- rm x`,
    `check_by_ssh -H h -C 'rm x'`,
    // rsync, zip, man, pagers, editors
    `rsync -e 'rm x' a h:b`,
    `rsync --rsh='rm x' a h:b`,
    `rsync --rsync-path='rm x; rsync' a h:b`,
    `RSYNC_RSH='rm x' rsync a h:b`,
    `zip /tmp/z.zip /etc/hosts -T -TT 'rm x'`,
    `zip z.zip f -T --unzip-command 'rm x'`,
    `zip z.zip f -T --unzip-command='rm x'`,
    `man -P 'rm x' ls`,
    `man --pager='rm x' ls`,
    `man '-Hrm x' ls`,
    `MANPAGER='rm x' man ls`,
    `PAGER='rm x' git log`,
    `LESSOPEN='|rm %s' less f`,
    `LESSOPEN='rm %s' less f`,
    `nano -s 'rm x' f`,
    `export EDITOR='rm x'`,
    `declare -x VISUAL='rm x'`,
    `env PAGER='rm x' git log`,
    `sudo PAGER='rm x' git log`,
    `: \${PAGER:=rm x}`,
    `SHELL=/bin/rm script -q /dev/null`,
    // wrappers (GTFOBins: programs that run the command in their arguments)
    `find . -exec rm {} \\;`,
    `xargs rm`,
    `env -S 'rm x'`,
    `nice -n 5 rm x`,
    `ionice -c 3 rm x`,
    `timeout 5 rm x`,
    `watch -x rm x`,
    `time rm x`,
    `/usr/bin/time -v rm x`,
    `strace -f rm x`,
    `ltrace -b -L rm x`,
    `flock /tmp/l -c 'rm x'`,
    `flock -u / rm x`,
    `sudo -s rm x`,
    `unshare -r rm x`,
    `unshare --map-root-user --mount rm x`,
    `nsenter -t 1 -m rm x`,
    `chrt 1 rm x`,
    `chrt -o rm x`,
    `setarch x86_64 rm x`,
    `setarch -3 rm x`,
    `linux32 rm x`,
    `firejail --noprofile rm x`,
    `valgrind --tool=none rm x`,
    `sshpass -p pw rm x`,
    `ssh-agent rm x`,
    `pkexec rm x`,
    `systemd-run --user rm x`,
    `torify rm x`,
    `torsocks rm x`,
    `logsave /tmp/log rm x`,
    `cpulimit -l 10 -- rm x`,
    `cpulimit -l 10 rm x`,
    `aa-exec -p unconfined rm x`,
    `aoss rm x`,
    `choom -n 5 rm x`,
    `rlwrap rm x`,
    `softlimit -m 1000000 rm x`,
    `setlock /tmp/l rm x`,
    `grc rm x`,
    `msgfilter -i f.po rm x`,
    `multitime -n 2 rm x`,
    `openvt -- rm x`,
    `sg wheel 'rm x'`,
    `sg wheel -c 'rm x'`,
    `distcc rm x`,
    `stdbuf -oL rm x`,
    `chroot / rm x`,
    `taskset 1 rm x`,
    `busybox rm x`,
    `pidstat -e rm x`,
    `start-stop-daemon -S -x /bin/rm -- x`,
    `/lib64/ld-linux-x86-64.so.2 /bin/rm x`,
    `ld.so /bin/rm x`,
    `fakeroot rm x`,
    `faketime '1 day ago' rm x`,
    `dbus-run-session -- rm x`,
    `xvfb-run -a rm x`,
    `prlimit --nofile=10 rm x`,
    `numactl --interleave=all rm x`,
    `bwrap --bind / / rm x`,
    `capsh -- -c 'rm x'`,
    `cmake -E env A=1 rm x`,
    `cmake -E time rm x`,
    `cmake -E chdir /tmp rm x`,
    // package managers' and tools' exec subcommands
    `npm exec -- rm x`,
    `npm x rm x`,
    `npm --prefix . exec rm x`,
    `npm exec -c 'rm x'`,
    `npx -p pkg rm x`,
    `npx --yes rm x`,
    `yarn exec rm x`,
    `yarn dlx rm x`,
    `pnpm exec rm x`,
    `pnpx rm x`,
    `bunx rm x`,
    `bun x rm x`,
    `bun exec 'rm x'`,
    `uv run rm x`,
    `uv tool run rm x`,
    `uvx rm x`,
    `pipx run rm x`,
    `poetry run rm x`,
    `pdm run rm x`,
    `hatch run rm x`,
    `conda run -n base rm x`,
    `bundle exec rm x`,
    `cabal exec -- rm x`,
    `stack exec rm x`,
    `rbenv exec rm x`,
    `mise exec -- rm x`,
    `direnv exec . rm x`,
    `rustup run stable rm x`,
    `xdotool exec rm x`,
    `nix develop -c rm x`,
    `ip netns exec ns rm x`,
    `ip -all netns exec rm x`,
    `ip vrf exec v rm x`,
    `perf stat rm x`,
    `perf record -g -- rm x`,
    `perf sched record rm x`,
    // network tools and others with command options
    `nc -e /bin/rm h 1`,
    `nc -c 'rm x' h 1`,
    `ncat --sh-exec 'rm x' h 1`,
    `busybox nc -e /bin/rm h 1`,
    `socat - EXEC:rm,pty`,
    `socat - exec:'rm x'`,
    `socat - SYSTEM:'rm x'`,
    `socket -p 'rm x' h 1`,
    `aria2c --on-download-complete=/bin/rm http://x/`,
    `certbot certonly --pre-hook 'rm x'`,
    `restic --password-command 'rm x' backup`,
    `restic -o sftp.command='rm x' backup`,
    `RESTIC_PASSWORD_COMMAND='rm x' restic backup`,
    `borg --rsh 'rm x' list`,
    `cpio -o --rsh-command /bin/rm -F h:f`,
    `dhclient -sf /bin/rm`,
    `dnsmasq --conf-script='rm x'`,
    `dmsetup ls --exec 'rm x'`,
    `enscript /dev/null -qo /dev/null -I 'rm x'`,
    `genie -c 'rm x'`,
    `tcpdump -ln -i lo -w /dev/null -W 1 -G 1 -z /bin/rm`,
    `openvpn --dev null --script-security 2 --up 'rm x'`,
    `logrotate -m /bin/rm conf`,
    `agetty -l /bin/rm tty`,
    `plymouth ask-for-password --command='rm x'`,
    `wget --use-askpass=/bin/rm 0`,
    `forge build --use /bin/rm`,
    `zic -d . -y /bin/rm f`,
    `yt-dlp 'https://x' --exec 'rm x'`,
    `scrot -e 'rm x'`,
    `sshuttle -e 'rm x' -r h 0/0`,
    `latexmk -pdf -pdflatex='rm x' /dev/null`,
    `go test -exec /bin/rm ./...`,
    `go build -toolexec=/bin/rm .`,
    `dpkg --pre-invoke='rm x' -i x.deb`,
    `pip config --editor /bin/rm edit`,
    `gem open -e /bin/rm x`,
    `perlbug -e /bin/rm`,
    `csvtool call 'rm x' /etc/hosts`,
    `task execute 'rm x'`,
    `pandoc --filter /bin/rm x.md`,
    `ansible localhost -m shell -a 'rm x'`,
    `rpm --pipe 'rm x' -qa`,
    `psql -o '|rm x' -c 'select 1'`,
    `mysql --pager='rm x' -e 'select 1'`,
    `bpftrace -c 'rm x' prog.bt`,
    `script -c 'rm x' out.log`,
    `octave --info-program /bin/rm f.m`,
    `split --filter='rm x' /etc/hosts`,
  ])('%s', (text) => {
    expect(programs(text)).toContain('rm');
  });
});

describe('everyday uses of the same programs stay known', () => {
  it.each([
    ['python3 script.py', ['python3']],
    ['python3 -m pytest -q tests', ['python3']],
    ['python3 -W ignore manage.py migrate', ['python3']],
    ['perl -I lib script.pl', ['perl']],
    ['ruby -r json x.rb', ['ruby']],
    ['node app.js', ['node']],
    ['node --test', ['node']],
    ['node -r ./setup.js app.js', ['node']],
    ['php -f x.php', ['php']],
    ['lua x.lua', ['lua']],
    ['Rscript analysis.R', ['Rscript']],
    ['R CMD check pkg', ['R']],
    ['tclsh x.tcl', ['tclsh']],
    ['gnuplot plot.gp', ['gnuplot']],
    ["awk '{print $1}' f", ['awk']],
    ["awk -F: '$3 >= 1000 {print $1}' /etc/passwd", ['awk']],
    ["awk '/error|warn/ {n++} END {print n}' log", ['awk']],
    ["awk '{ x = a / 2; y = b / 3; print x, y }' f", ['awk']],
    ["awk 'NR % 2 == 0 || NR == 1' f", ['awk']],
    ['awk -f prog.awk f', ['awk']],
    ["awk -v n=1 '{print n}' f", ['awk']],
    [`awk 'BEGIN { printf "%s\\n", "a|b" }'`, ['awk']],
    ['gawk --sandbox \'BEGIN { system("x") }\'', ['gawk']],
    ["sed 's/a/b/' f", ['sed']],
    ["sed -i.bak -e 's/x/y/g' f", ['sed']],
    ["sed -n '/start/,/end/p' f", ['sed']],
    ["sed ':a;N;$!ba;s/\\n/ /g' f", ['sed']],
    ["sed -E 's/(a|b)+/c/' f", ['sed']],
    ["sed '1d;$d' f", ['sed']],
    ["sed 'y/abc/xyz/' f", ['sed']],
    ["sed '/x/a hello' f", ['sed']],
    ['sed -f script.sed f', ['sed']],
    ["sed 's/a/b/w out.txt' f", ['sed']],
    ["sed '$!N;s/e/E/' f", ['sed']],
    ['tar -xf a.tar', ['tar']],
    ['tar xzf a.tgz -C /tmp', ['tar']],
    ['tar -czf b.tgz dir', ['tar']],
    ['tar --checkpoint=100 --checkpoint-action=dot -cf a.tar d', ['tar']],
    ['tar -xf "$archive" -C "$dir"', ['tar']],
    ['tar -czf b.tgz -- *', ['tar']],
    ['git log --oneline', ['git']],
    ['git -c user.name=x commit -m y', ['git']],
    ['git -c color.ui=always -c color.pager=false log', ['git']],
    ['git -c core.pager=cat log', ['git', 'cat']],
    ['git config user.email a@b', ['git']],
    ['git config --get core.pager', ['git']],
    ['git -C "$repo" status', ['git']],
    ['git clone https://example.com/r.git', ['git']],
    ['rsync -av a/ b/', ['rsync']],
    ['rsync -e ssh -av a h:b', ['rsync', 'ssh']],
    ['ssh host ls -l', ['ssh', 'ls']],
    ['ssh -N -L 8080:h:80 host', ['ssh']],
    ['ssh -- "$HOST" uptime', ['ssh', 'uptime']],
    ['scp a h:b', ['scp']],
    ['sftp -b batch h', ['sftp']],
    ['sftp h:/etc/hosts', ['sftp']],
    ['zip -r z.zip d', ['zip']],
    ['zip -T z.zip f', ['zip']],
    ['man ls', ['man']],
    ['man -P cat ls', ['man', 'cat']],
    ['less f', ['less']],
    ['less +G f', ['less']],
    ['less +/pattern f', ['less']],
    ['vim f', ['vim']],
    ['vim +10 f', ['vim']],
    ['vi -R -u NONE f', ['vi']],
    ['nano f', ['nano']],
    ['emacs -nw f', ['emacs']],
    ["psql -h db -c 'select 1'", ['psql']],
    ['psql -f dump.sql db', ['psql']],
    ['psql -l', ['psql']],
    ["mysql -e 'select 1' db", ['mysql']],
    ["sqlite3 db 'select 1'", ['sqlite3']],
    ["dc -e '2 3 + p'", ['dc']],
    ["lftp -c 'get f; bye'", ['lftp']],
    ["smbclient //h/s -c 'ls'", ['smbclient']],
    ['at -f job.sh now', ['at']],
    ['crontab -l', ['crontab']],
    ['crontab jobs.txt', ['crontab']],
    ['m4 file.m4', ['m4']],
    ['script -c ls out.log', ['script', 'ls']],
    ['mail -s subject a@example.com', ['mail']],
    ['tmux ls', ['tmux']],
    ['make -j4 all', ['make']],
    ['curl -fsSL https://example.com', ['curl']],
    ['curl -o out "$URL"', ['curl']],
    ['gcc -O2 -o x x.c', ['gcc']],
    ['openssl x509 -in c.pem -noout -text', ['openssl']],
    ['latex doc.tex', ['latex']],
    ['nc -z h 22', ['nc']],
    ['socat - TCP:h:80', ['socat']],
    ['npm run build', ['npm']],
    ['npm test', ['npm']],
    ['ip addr show', ['ip']],
    ['perf report', ['perf']],
    ['cmake -E make_directory build', ['cmake']],
    ['PAGER=cat git log', ['git', 'cat']],
    ['EDITOR=vim crontab -e', ['crontab', 'vim']],
    ['export LANG=C', ['export']],
    ['SHELL=/bin/bash make', ['make', 'bash']],
  ])('%s', (text, expected) => {
    expect(programs(text)).toEqual(expected);
  });
});

describe('arguments whose value is only known at run time', () => {
  it('count as unknown where they could become an option that runs a command', () => {
    // `tar -czf b.tgz *` with a file named `--checkpoint-action=exec=sh x.sh` (wildcard injection).
    expect(programs('tar -czf b.tgz *')).toEqual(['tar', null]);
    expect(programs('tar -cf b.tar "$opt" d')).toEqual(['tar', null]);
    expect(programs('rsync $RSYNC_ARGS a b')).toEqual(['rsync', null]);
    expect(programs('ssh "$HOST" uptime')).toEqual(['ssh', null]);
    expect(programs('python3 "$script"')).toEqual(['python3', null]);
  });

  it('stay known after a literal prefix, as option values, and after --', () => {
    expect(programs('tar -czf b.tgz ./*')).toEqual(['tar']);
    expect(programs('tar -xf "$f"')).toEqual(['tar']);
    expect(programs('rsync -av -- "$src" "$dst"')).toEqual(['rsync']);
  });
});

describe('wrappers with options we do not know', () => {
  it('read every later word as a possible start of the command', () => {
    expect(programs('bwrap --ro-bind /usr /usr --bind /tmp /tmp rm x')).toContain('rm');
    expect(programs('sudo --some-new-option rm x')).toContain('rm');
    expect(programs('timeout -Z 5 rm x')).toContain('rm');
  });

  it('read an optional operand both ways', () => {
    expect(programs('chrt --idle rm x')).toEqual(['chrt', 'x', 'rm']);
    expect(programs('chrt 5 rm x')).toEqual(['chrt', 'rm', '5']);
  });

  it('count wrappers with shell-code options and an unknown option as unknown', () => {
    expect(programs("flock --frobnicate /tmp/l 'rm x'")).toEqual(['flock', null]);
  });

  it('keep the flags they know', () => {
    expect(programs('env --ignore-environment --default-signal rm x')).toEqual(['env', 'rm']);
    expect(programs('xargs --max-lines rm')).toEqual(['xargs', 'rm']);
  });
});

describe('variables that programs run later', () => {
  it.each([
    ['LD_PRELOAD=/tmp/x.so ls', ['ls', null]],
    ['export LD_LIBRARY_PATH=/tmp', ['export', null]],
    ['GCONV_PATH=. iconv -f x', ['iconv', null]],
    ['GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=core.pager GIT_CONFIG_VALUE_0=sh git log', ['git', null]],
    ['TAR_OPTIONS=--to-command=sh tar -xf a.tar', ['tar', null]],
    ['NODE_OPTIONS=--import=data:text/javascript,1 node x.js', ['node', null]],
    ['VIMINIT=":!rm x" vim', ['vim', null]],
    ['read -r PAGER', ['read', null]],
    ['printf -v PAGER %s x', ['printf', null]],
    ['declare -n ref=PAGER', ['declare', null]],
    ['export "$name=value"', ['export', null]],
    ['PAGER="$X" git log', ['git', null]],
  ])('%s', (text, expected) => {
    expect(programs(text)).toEqual(expected);
  });

  it('leave ordinary variables and harmless values alone', () => {
    expect(programs('NODE_OPTIONS=--max-old-space-size=4096 node x.js')).toEqual(['node']);
    expect(programs('GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=user.name GIT_CONFIG_VALUE_0=x git log')).toEqual([
      'git',
    ]);
    expect(programs('read -r line')).toEqual(['read']);
    expect(programs('FOO="$X" make')).toEqual(['make']);
  });
});

describe('argv without a shell (docker exec Cmd)', () => {
  it('reads the same forms', () => {
    const python = analyzeArgv(['python3', '-c', 'import os; os.remove("x")']);
    expect(python.commands.map((c) => c.program)).toEqual(['python3', null]);
    const tar = analyzeArgv(['tar', '-xf', 'a.tar', '--to-command=rm x']);
    expect(tar.commands.map((c) => c.program)).toEqual(['tar', 'rm']);
    expect(analyzeArgv(['tar', '-xf', 'a.tar', '*']).commands.map((c) => c.program)).toEqual(['tar']);
  });
});

describe('awk program reader', () => {
  it.each([
    ['BEGIN { system("x") }', true],
    ['{ print | "sort" }', true],
    ['{ "date" | getline d }', true],
    ['{ print |& "cat" }', true],
    ['@include "x"', true],
    ['{ print }', false],
    ['a || b { print }', false],
    ['/a|b/ { print }', false],
    ['$1 ~ /x|y/', false],
    ['{ print "a|b" }', false],
    ['{ x = a / b; y = c / d }', false],
    // A `/` after `)` may be a division or a regex: the `|` in it counts.
    ['(a) /x|"/ { print }', true],
    // awks disagree on `/` inside brackets: the `|` after it counts.
    ['/[/]/ { print | "sh" }', true],
    ['x++ /2|"sh"/', true],
  ])('%j runs commands: %s', (program, expected) => {
    expect(awkRunsCommands(program)).toBe(expected);
  });
});

describe('sed script reader', () => {
  it.each([
    ['e', true],
    ['1e rm x', true],
    ['/x/e', true],
    ['s/a/b/e', true],
    ['s/a/b/ge', true],
    ['s|a|b|2e', true],
    ['y/a/b/;e', true],
    [':a;N;$!ba;s/x/y/e', true],
    ['b end;e rm x', true],
    ['s/a/b', true], // unterminated: beyond this reader
    ['k', true], // not a sed command
    ['s/a/b/', false],
    ['s/a\\/b/c/g', false],
    ['/re/I,+2d', false],
    ['0~3d', false],
    ['1!G;h;$!d', false],
    ['a\\\ntext e here', false],
    ['i hello e', false],
    ['w out.txt', false],
    ['r /etc/hosts', false],
    ['s/a/b/w out e', false],
    ['# comment e\np', false],
    ['{ /x/ { p } }', false],
    ['l 80;q 5', false],
    ['\\%re%d', false],
  ])('%j runs commands: %s', (script, expected) => {
    expect(sedRunsCommands(script)).toBe(expected);
  });
});

describe('git configuration keys', () => {
  it.each([
    ['alias.x', 'alias'],
    ['core.pager', 'shell'],
    ['Core.SSHCommand', 'shell'],
    ['pager.log', 'shell'],
    ['diff.tool.textconv', 'shell'],
    ['filter.lfs.process', 'shell'],
    ['credential.helper', 'credential'],
    ['credential.https://x.helper', 'credential'],
    ['hook.pre-commit.command', 'shell'],
    ['core.hooksPath', 'unknown'],
    ['include.path', 'unknown'],
    ['includeIf.gitdir:~/x/.path', 'unknown'],
    ['protocol.ext.allow', 'unknown'],
    ['url.ext::sh.insteadOf', 'unknown'],
    ['url.git@github.com:.insteadOf', undefined],
    ['user.name', undefined],
    ['color.ui', undefined],
  ])('%s: %s', (key, kind) => {
    expect(gitConfigKind(key)).toBe(kind);
  });
});

describe('the catalogue', () => {
  // Every binary GTFOBins lists with a shell, command, reverse-shell, bind-shell, library-load or inherit
  // function (and its aliases), as of the catalogue's reading: each has an entry.
  const GTFOBINS =
    'R aa-exec acr agetty ansible-playbook ansible-test aoss apport-cli apt-get aptitude arch-nspawn aria2c ash ' +
    'asterisk at autoconf autoheader autoreconf aws bash bashbug batcat bconsole bee borg bpftrace bundle busctl ' +
    'busybox byebug cabal capsh cargo cdist certbot check_by_ssh check_ssl_cert choom chroot chrt clisp cmake cobc ' +
    'code codex composer cowsay cowthink cpan cpio cpulimit crash crontab csh csvtool ctr curl dash dc debugfs ' +
    'dhclient distcc dmesg dmsetup dnf dnsmasq doas docker dotnet dpkg dstat dvips easy_install easyrsa eb ed ' +
    'elvish emacs enscript env ex exiftool expect facter fail2ban-client fastfetch ffmpeg find firejail fish flock ' +
    'forge ftp fzf gawk gcc gcloud gdb gem genie ghc ghci gimp ginsh git gnuplot go grc gtester guile hg hping3 ' +
    'iftop ionice ip irb ispell java jjs joe journalctl jrunscript jshell jtag julia knife ksu kubectl latex ' +
    'latexmk ld.so ldconfig less lftp loginctl logrotate logsave ltrace lua lualatex luatex lxd m4 mail make man ' +
    'mawk minicom more mosh-server msfconsole msgfilter multitime mysql nano nc ncdu ncftp needrestart neofetch ' +
    'nginx nice nmap node nohup npm nroff nsenter octave opencode openssl openvpn openvt opkg pandoc pdb pdflatex ' +
    'pdftex perf perl perlbug pexec pg php pic pidstat pip pipx pkexec pkg plymouth podman poetry posh procmail ' +
    'pry psftp psql puppet pwsh python rake ranger rc restic rlwrap rpm rpmdb rpmquery rpmverify rsync rsyslogd ' +
    'rtorrent ruby run-mailcap run-parts runscript rustc rustup sash scanmem scp screen script scrot sed service ' +
    'setarch setlock sftp sg slsh smbclient snap socat socket softlimit split sqlite3 sqlmap ssh ssh-agent ' +
    'ssh-keygen sshfs sshpass sshuttle start-stop-daemon stdbuf strace su sudo sysctl systemctl systemd-resolve ' +
    'systemd-run tar task taskset tasksh tclsh tcpdump tcsh tdbtool telnet tex time timedatectl timeout tmate tmux ' +
    'top torify torsocks tshark unshare uv vagrant valgrind vi vigr vim vipw virsh volatility watch wg-quick wget ' +
    'wireshark wish xargs xdg-user-dir xdotool yarn yash yt-dlp yum zathura zic zip zless zsh zypper ' +
    'apt awk bundler c89 c99 cc g++ ksh nawk nvim pico red rview rvim view vimdiff xelatex xetex';

  it('has an entry for every GTFOBins binary that runs programs, code or libraries', () => {
    const missing = GTFOBINS.split(' ').filter((name) => programExecution(name) === undefined);
    expect(missing).toEqual([]);
  });

  it('gives every entry a class and only meaningful fields', () => {
    for (const [name, entry] of CATALOGUE) {
      expect([name, entry.class]).toEqual([name, expect.any(String)]);
      if (entry.inlineOperand !== undefined || entry.escape !== undefined) {
        expect([name, entry.class]).toEqual([name, 'commands']);
      }
    }
  });
});
