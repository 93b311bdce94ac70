; Inno Setup script for the Windows installer (not built or run here: this project's machines are Linux).
; Build the bundle on Windows first:  pyinstaller --noconfirm packaging\desktop-recorder.spec
; then:  iscc packaging\windows\desktop-recorder.iss
#define AppVersion GetEnv("DESKTOP_RECORDER_VERSION")
#if AppVersion == ""
  #define AppVersion "0.1.0"
#endif

[Setup]
AppId={{6C1E0C6B-8D1A-4C5E-9A65-3E0B1F7D2A10}
AppName=Desktop Recorder
AppVersion={#AppVersion}
AppPublisher=Desktop Recorder contributors
DefaultDirName={autopf}\Desktop Recorder
DefaultGroupName=Desktop Recorder
OutputDir=..\..\dist
OutputBaseFilename=desktop-recorder-{#AppVersion}-windows-setup
Compression=lzma2
SolidCompression=yes
PrivilegesRequired=lowest
ArchitecturesInstallIn64BitMode=x64compatible

[Files]
Source: "..\..\dist\desktop-recorder\*"; DestDir: "{app}"; Flags: recursesubdirs ignoreversion

[Icons]
Name: "{group}\Desktop Recorder"; Filename: "{app}\desktop-recorder.exe"
Name: "{userstartup}\Desktop Recorder"; Filename: "{app}\desktop-recorder.exe"; Tasks: autostart

[Tasks]
Name: autostart; Description: "Start Desktop Recorder when I sign in"; Flags: unchecked

[Run]
Filename: "{app}\desktop-recorder.exe"; Description: "Start Desktop Recorder"; Flags: nowait postinstall skipifsilent
