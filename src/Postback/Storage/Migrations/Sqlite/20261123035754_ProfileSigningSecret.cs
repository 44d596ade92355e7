using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Postback.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class ProfileSigningSecret : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "SigningSecret",
                table: "export_profiles",
                type: "TEXT",
                maxLength: 100,
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "SigningSecret",
                table: "export_profiles");
        }
    }
}
