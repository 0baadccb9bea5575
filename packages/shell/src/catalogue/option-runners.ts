/**
 * Programs whose named options or arguments run a command line (analysed as shell code) or code (unknown),
 * and programs whose purpose is to run programs or a shell they choose (`always`).
 */
import { always, type CatalogueEntry, files, handler, withOptions, wrapper } from './entry.js';

const SSH_SETTINGS = (key: string): 'shell' | 'unknown' | undefined => {
  const k = key.toLowerCase();
  if (k === 'proxycommand' || k === 'localcommand' || k === 'knownhostscommand') return 'shell';
  if (k === 'pkcs11provider' || k === 'securitykeyprovider' || k === 'match') return 'unknown';
  return undefined;
};

/**
 * Keys of `apt-get -o` whose value is a command (`APT::Update::Pre-Invoke`, `DPkg::Post-Invoke`), a program
 * (`Dir::Bin::*`) or a hook.
 */
const APT_SETTINGS = (key: string): 'shell' | 'unknown' | undefined =>
  /invoke|install-pkgs|dir::bin|hook|program|command|helper|pager|editor|methods/i.test(key)
    ? 'unknown'
    : undefined;

const RPM = withOptions(
  { '--eval': 'unknown', '-E': 'unknown', '--pipe': 'shell', '-D': 'value', '--define': 'value' },
  { unknownArguments: /%\(|%\{lua:|%\{\(/ },
);
const TEX = withOptions(
  {
    '-shell-escape': 'unknown-flag',
    '-enable-write18': 'unknown-flag',
  },
  { singleDashLongs: true },
);
const GROFF = withOptions({ '-U': 'unknown-flag' });

export const OPTION_RUNNERS: readonly CatalogueEntry[] = [
  // options that run commands
  [
    'make',
    withOptions({
      '--eval': 'unknown',
      '-E': 'unknown',
      '-f': 'file',
      '--file': 'file',
      '--makefile': 'file',
      '-C': 'value',
      '--directory': 'value',
      '-I': 'value',
      '-j': 'attached',
      '-o': 'value',
      '-W': 'value',
    }),
  ],
  [
    'gmake',
    withOptions({
      '--eval': 'unknown',
      '-E': 'unknown',
      '-f': 'file',
      '--file': 'file',
      '--makefile': 'file',
      '-C': 'value',
      '--directory': 'value',
    }),
  ],
  ['cmake', handler],
  ['rpm', RPM],
  ['rpmdb', RPM],
  ['rpmquery', RPM],
  ['rpmverify', RPM],
  ['rpmbuild', RPM],
  ['rpmspec', RPM],
  ['rpmsign', RPM],
  [
    'apt-get',
    withOptions(
      { '-o': 'setting', '--option': 'setting', '-c': 'value', '--config-file': 'value', '-t': 'value' },
      { settings: APT_SETTINGS },
    ),
  ],
  [
    'apt',
    withOptions(
      { '-o': 'setting', '--option': 'setting', '-c': 'value', '--config-file': 'value', '-t': 'value' },
      { settings: APT_SETTINGS },
    ),
  ],
  ['aptitude', withOptions({ '-o': 'setting', '-c': 'value' }, { settings: APT_SETTINGS })],
  ['dpkg', withOptions({ '--pre-invoke': 'shell', '--post-invoke': 'shell', '--status-logger': 'shell' })],
  ['pip', withOptions({ '--editor': 'shell' })],
  ['gem', withOptions({ '-e': 'shell', '--editor': 'shell' })],
  ['perlbug', withOptions({ '-e': 'shell' })],
  [
    'go',
    withOptions(
      { '-exec': 'shell', '-toolexec': 'shell', '-o': 'value', '-C': 'value' },
      { singleDashLongs: true },
    ),
  ],
  ['gcc', withOptions({}, { unknownArguments: /^-(wrapper$|fplugin|specs=|-specs|B)/ })],
  ['ld.so', wrapper],
  ['ldconfig', files],
  ['nginx', withOptions({ '-g': 'unknown', '-c': 'value', '-p': 'value', '-e': 'value' })],
  [
    'openssl',
    withOptions(
      { '-engine': 'unknown', '-provider': 'unknown', '-provider-path': 'unknown' },
      { singleDashLongs: true },
    ),
  ],
  ['curl', withOptions({ '--engine': 'unknown' })],
  ['ssh-keygen', withOptions({ '-D': 'unknown' })],
  ['ssh-add', withOptions({ '-s': 'unknown', '-S': 'unknown', '-e': 'value' })],
  ['ffmpeg', withOptions({}, { unknownArguments: /\b(ladspa|lv2|frei0r|frei0r_src)\s*=/ })],
  ['ffplay', withOptions({}, { unknownArguments: /\b(ladspa|lv2|frei0r|frei0r_src)\s*=/ })],
  ['ffprobe', withOptions({}, { unknownArguments: /\b(ladspa|lv2|frei0r|frei0r_src)\s*=/ })],
  [
    'sysctl',
    withOptions({}, { unknownArguments: /(core_pattern|modprobe|hotplug|poweroff_cmd|usermodehelper)/ }),
  ],
  [
    'tcpdump',
    withOptions({
      '-z': 'shell',
      '-Z': 'value',
      '-i': 'value',
      '-w': 'value',
      '-r': 'value',
      '-c': 'value',
      '-C': 'value',
      '-G': 'value',
      '-W': 'value',
      '-s': 'value',
      '-F': 'value',
      '-E': 'value',
      '-B': 'value',
      '-y': 'value',
      '-T': 'value',
      '-V': 'value',
    }),
  ],
  [
    'aria2c',
    withOptions({
      '--on-download-complete': 'shell',
      '--on-download-error': 'shell',
      '--on-download-start': 'shell',
      '--on-download-pause': 'shell',
      '--on-download-stop': 'shell',
      '--on-bt-download-complete': 'shell',
    }),
  ],
  [
    'certbot',
    withOptions({
      '--pre-hook': 'shell',
      '--post-hook': 'shell',
      '--deploy-hook': 'shell',
      '--renew-hook': 'shell',
      '--manual-auth-hook': 'shell',
      '--manual-cleanup-hook': 'shell',
    }),
  ],
  [
    'restic',
    withOptions(
      { '--password-command': 'shell', '-o': 'setting', '--option': 'setting' },
      { settings: (key) => (/command$/i.test(key) ? 'shell' : undefined) },
    ),
  ],
  ['borg', withOptions({ '--rsh': 'shell' })],
  ['cpio', withOptions({ '--rsh-command': 'shell' })],
  [
    'dhclient',
    withOptions(
      { '-sf': 'shell', '-cf': 'value', '-lf': 'value', '-pf': 'value' },
      { singleDashLongs: true },
    ),
  ],
  [
    'dnsmasq',
    withOptions({
      '--conf-script': 'shell',
      '--dhcp-script': 'shell',
      '-6': 'shell',
      '--dhcp-luascript': 'value',
    }),
  ],
  ['dmsetup', withOptions({ '--exec': 'shell' })],
  ['enscript', withOptions({ '-I': 'shell', '--filter': 'shell' })],
  [
    'fzf',
    withOptions({
      '--bind': 'unknown',
      '--preview': 'unknown',
      '--listen': 'unknown',
      '--listen-unsafe': 'unknown',
      '--with-shell': 'unknown',
    }),
  ],
  [
    'genie',
    withOptions({
      '-c': 'shell',
      '--command': 'shell',
      '-s': 'unknown-flag',
      '--shell': 'unknown-flag',
      '-l': 'unknown-flag',
      '--login': 'unknown-flag',
    }),
  ],
  [
    'hg',
    withOptions(
      { '--config': 'setting', '-e': 'shell', '--ssh': 'shell', '--remotecmd': 'shell' },
      {
        settings: (key) =>
          /^(alias|hooks|extensions|pager|merge-tools|extdiff)\.|^ui\.(editor|merge|ssh)$/i.test(key)
            ? 'unknown'
            : undefined,
      },
    ),
  ],
  [
    'latexmk',
    withOptions(
      {
        '-e': 'unknown',
        '-r': 'value',
        '-pdflatex': 'shell',
        '-latex': 'shell',
        '-lualatex': 'shell',
        '-xelatex': 'shell',
        '-dvipdf': 'shell',
        '-ps2pdf': 'shell',
        '-pdf_previewer': 'shell',
        '-shell-escape': 'unknown-flag',
      },
      { singleDashLongs: true },
    ),
  ],
  [
    'logrotate',
    withOptions({
      '-m': 'shell',
      '--mail': 'shell',
      '-s': 'value',
      '--state': 'value',
      '-l': 'value',
      '--log': 'value',
    }),
  ],
  [
    'agetty',
    withOptions({
      '-l': 'shell',
      '--login-program': 'shell',
      '-o': 'value',
      '--login-options': 'value',
      '-I': 'value',
      '-f': 'value',
      '-H': 'value',
      '-t': 'value',
    }),
  ],
  [
    'nc',
    withOptions({
      '-e': 'shell',
      '-c': 'shell',
      '--exec': 'shell',
      '--sh-exec': 'shell',
      '--lua-exec': 'unknown',
      '-p': 'value',
      '-s': 'value',
      '-w': 'value',
      '-i': 'value',
      '-q': 'value',
      '-x': 'value',
      '-X': 'value',
      '-I': 'value',
      '-O': 'value',
      '-T': 'value',
      '-V': 'value',
      '-P': 'value',
    }),
  ],
  ['socat', handler],
  ['socket', withOptions({ '-p': 'shell' })],
  ['split', withOptions({ '--filter': 'shell' })],
  ['scrot', withOptions({ '-e': 'shell', '--exec': 'shell' })],
  [
    'sshuttle',
    withOptions({
      '-e': 'shell',
      '--ssh-cmd': 'shell',
      '-r': 'value',
      '--remote': 'value',
      '--python': 'value',
    }),
  ],
  ['yt-dlp', withOptions({ '--exec': 'shell', '--exec-before-download': 'shell', '--netrc-cmd': 'shell' })],
  ['youtube-dl', withOptions({ '--exec': 'shell' })],
  ['zic', withOptions({ '-y': 'shell', '-d': 'value', '-l': 'value', '-p': 'value', '-L': 'value' })],
  ['plymouth', withOptions({ '--command': 'shell' })],
  ['wget', withOptions({ '--use-askpass': 'shell' })],
  ['forge', withOptions({ '--use': 'shell' })],
  ['pidstat', withOptions({ '-e': 'rest' })],
  [
    'openvpn',
    withOptions({
      '--up': 'shell',
      '--down': 'shell',
      '--ipchange': 'shell',
      '--route-up': 'shell',
      '--route-pre-down': 'shell',
      '--client-connect': 'shell',
      '--client-disconnect': 'shell',
      '--learn-address': 'shell',
      '--auth-user-pass-verify': 'shell',
      '--tls-verify': 'shell',
      '--plugin': 'unknown',
    }),
  ],
  [
    'start-stop-daemon',
    withOptions({ '-x': 'shell', '--exec': 'shell', '-a': 'shell', '--startas': 'shell' }),
  ],
  [
    'check_by_ssh',
    withOptions({ '-o': 'setting', '-C': 'shell', '--command': 'shell' }, { settings: SSH_SETTINGS }),
  ],
  ['check_ssl_cert', withOptions({ '--grep-bin': 'shell' }, { unknownArguments: /^--[a-z-]+-bin(=|$)/ })],
  ['busctl', withOptions({}, { unknownArguments: /unixexec:/ })],
  ['csvtool', withOptions({}, { subcommands: { call: withOptions({}, { shellOperand: 0 }) } })],
  ['task', withOptions({}, { subcommands: { execute: withOptions({}, { shellOperand: 0 }) } })],
  ['ansible', withOptions({ '-a': 'shell', '--args': 'shell' })],
  ['ansible-test', withOptions({}, { subcommands: { shell: always() } })],
  ['cdist', withOptions({}, { subcommands: { shell: always() } })],
  ['code', withOptions({}, { subcommands: { tunnel: always(), 'serve-web': always() } })],
  ['fail2ban-client', withOptions({}, { unknownArguments: /^action(ban|unban|start|stop|check)$/ })],
  ['service', withOptions({}, { unknownArguments: /\// })],
  ['xdg-user-dir', withOptions({}, { unknownArguments: /[;&|`$(){}<>]/ })],
  ['dvips', withOptions({}, { unknownArguments: /^-R0$/ })],
  ['java', withOptions({}, { unknownArguments: /^-(agentpath|agentlib|javaagent):/ })],
  ['ranger', withOptions({ '--cmd': 'unknown' })],
  ['nano', withOptions({ '-s': 'shell', '--speller': 'shell' })],
  [
    'emacs',
    withOptions(
      {
        '-eval': 'unknown',
        '-execute': 'unknown',
        '-f': 'unknown',
        '-funcall': 'unknown',
        '-l': 'value',
        '-load': 'value',
        '-L': 'value',
      },
      { singleDashLongs: true },
    ),
  ],
  ['groff', GROFF],
  ['nroff', GROFF],
  ['troff', GROFF],
  ['pic', GROFF],
  ['tex', TEX],
  ['etex', TEX],
  ['pdftex', TEX],
  ['xetex', TEX],
  ['luatex', TEX],
  ['luahbtex', TEX],
  ['latex', TEX],
  ['pdflatex', TEX],
  ['xelatex', TEX],
  ['lualatex', TEX],
  ['dvilualatex', TEX],
  ['context', TEX],
];
